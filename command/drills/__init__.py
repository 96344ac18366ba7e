"""Drills: a scenario file loaded strictly (``scenario``), replayed through the response service as an
Exercise (``replay``), and its after-action report (``aar``). The file format and the report are the
contract of ``contracts/drill-scenario.md``.

    from command import drills
    report = drills.run_drill(drills.load_scenario(path))   # virtual clock: same file -> same report
    drills.report_exit_code(report)                         # 0 when every expect passed
"""
from command._lazy import lazy_face

__all__ = ["Scenario", "ScenarioEvent", "load_scenario", "parse_time", "run_drill", "report_exit_code",
           "write_report"]
__getattr__, __dir__ = lazy_face(__name__, {
    "Scenario": "scenario", "ScenarioEvent": "scenario", "load_scenario": "scenario", "parse_time": "scenario",
    "run_drill": "replay", "report_exit_code": "replay",
    "write_report": "aar",
})
