"""The accessibility audit: axe-core's WCAG 2.x A and AA rules, in every frame of the page.

axe-core's script comes from the axe-playwright-python package (only its JS file is
used). It is put into every frame first, so that axe in the main frame can hand
each frame's part to the axe inside it (axe's own frame handling). A rule weighs by
its impact (critical 10, serious 7, moderate 3, minor 1); the score is the share of
the weight of the rules that applied to the page which passed. Rules axe could not
decide ("needs review") are left out.
"""

import functools
import logging
from importlib import resources
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits.report import Check, audit_result, failed, impact_of, passed, weighted_score

log = logging.getLogger(__name__)

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
"""The axe rule tags the audit runs: WCAG 2.0, 2.1 and 2.2 at levels A and AA."""

FRAME_SEPARATOR = " >>> "
"""Between a frame's selector and the selector of an element inside it, in a target."""

# Every frame's axe may answer the main frame's (cross-origin frames included).
_CONFIGURE = "\n;axe.configure({allowedOrigins: ['<unsafe_all_origins>']});"

# The rule's impact for a passing rule is the highest impact of its checks.
_RUN = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  const order = ["minor", "moderate", "serious", "critical"];
  const impactOf = (rule) => {
    const node = rule.nodes[0];
    const checks = node ? [...node.any, ...node.all, ...node.none] : [];
    return checks.map((check) => check.impact)
      .reduce((worst, impact) => order.indexOf(impact) > order.indexOf(worst) ? impact : worst,
        null);
  };
  const where = (target) => target.map((part) => Array.isArray(part) ? part.join(" ") : part);
  return {
    violations: results.violations.map((rule) => ({
      id: rule.id,
      impact: rule.impact,
      description: rule.description,
      help: rule.help,
      helpUrl: rule.helpUrl,
      targets: rule.nodes.map((node) => where(node.target)),
    })),
    passes: results.passes.map((rule) => ({id: rule.id, impact: impactOf(rule)})),
  };
}"""


@functools.cache
def axe_script() -> str:
    """axe-core's script as the package ships it, configured to answer across frames."""
    script = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    return script + _CONFIGURE


async def audit_accessibility(page: Page) -> tasks_pb2.AuditResult:
    """The WCAG A and AA violations axe finds in the page and its frames, worst first."""
    for frame in page.frames:
        try:
            await frame.evaluate(axe_script())
        except PlaywrightError as error:
            # An error page or a frame that went away: axe in its parent reports it untested.
            log.debug("axe not put into frame %s: %s", frame.url[:100], error.message)
    outcome: dict[str, Any] = await page.main_frame.evaluate(_RUN, list(WCAG_TAGS))
    return accessibility_result(outcome)


def accessibility_result(outcome: dict[str, Any]) -> tasks_pb2.AuditResult:
    """The AuditResult of axe's violations and passes."""
    checks: list[Check] = [
        passed(rule["id"], impact_of(rule["impact"])) for rule in outcome["passes"]
    ]
    checks.extend(
        failed(
            rule["id"],
            impact_of(rule["impact"]),
            rule["description"],
            f"{rule['help']}: {rule['helpUrl']}",
            [FRAME_SEPARATOR.join(target) for target in rule["targets"]],
        )
        for rule in outcome["violations"]
    )
    return audit_result(tasks_pb2.AUDIT_KIND_ACCESSIBILITY, checks, weighted_score(checks))
