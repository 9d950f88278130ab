"""Serving telemetry read from Prometheus, under the exporters' real names and labels.

Each figure is looked up under every spelling a supported version uses, and what answered is
kept so the report can say which version's names it found. The engines' series
(:mod:`tasks.telemetry.engines`) and the accelerators' bandwidth series
(:mod:`tasks.telemetry.gpus`) are read through one reader (:mod:`tasks.telemetry.reader`),
both at once (:mod:`tasks.telemetry.window`).
"""
