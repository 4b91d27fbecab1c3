"""The local farm's traces: an OTLP/gRPC sink writing spans to files, and a terminal waterfall.

`farm up --traces` runs the sink (`python -m farm_cli.traces`) and points every
process at it; `farm task trace ID` reads the task's spans back and draws them.
spans.py holds the files' format, sink.py the receiver, waterfall.py the drawing.
"""
