"""The tools the MCP server lists, by name: what its unit and end-to-end tests expect."""

TOOL_NAMES = {
    "navigate", "screenshot", "click", "fill", "hover", "select", "evaluate", "get_content",
    "get_console_logs", "get_console_errors", "get_network_logs", "get_network_errors",
    "run_accessibility_audit", "run_performance_audit", "run_seo_audit",
    "run_best_practices_audit", "emulate_device", "reset_emulation", "start_screencast",
    "stop_screencast", "screencast_status", "set_cookies", "get_cookies", "close_browser",
    "snapshot", "pdf", "extract", "wait_for", "handle_dialog",
    "press", "navigate_back", "navigate_forward", "tabs",
}  # fmt: skip
