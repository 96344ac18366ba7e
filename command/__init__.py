"""The response (指挥, command and control): group sessions, timeline, alerts, broadcast hooks, drills, the CLI."""
