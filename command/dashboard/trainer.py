"""The trainer's page (演练导调) and the players' banner (演练 EXERCISE).

    trainer.is_trainer(principal)      # a signed-in trainer gets page() instead of the command screen
    trainer.page(settings)             # start (scenario: upload or an example; players; speed 1x-60x),
                                       # control (clock, pause/resume/end, jump, fire now, add an inject,
                                       # late join, notes), the after-action report (ratings, downloads),
                                       # and playback (command.dashboard.playback)
    trainer.banner(ex)                 # on every view of a player: the exercise's name and its clock

Every callback here runs the engine of ``command.drills.exercise``, the same the API calls, and checks the
signed-in user may ``exercise.run`` (``command.drills.trainers.require``: a user stored with the role
``trainer``). A trainer gets this page and nothing else: the role allows ``view`` and ``exercise.run`` only,
so every report, task and warning callback refuses them at the gate. Component ids start "trainer-" or
"exercise-banner-". Playback (``command.dashboard.playback``) is a panel of this page; it imports nothing
from here.
"""
from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import playback, runtime
from command.dashboard.security import guarded, principal
from command.drills import trainers
from command.drills.exercise import example_scenarios

BANNER_STYLE = {"background": "#b3261e", "color": "#fff", "fontWeight": "bold", "padding": "2px 12px",
                "display": "flex", "gap": "16px", "alignItems": "center", "fontSize": "14px"}
BOX = {"border": "1px solid #ccd", "borderRadius": "4px", "padding": "8px 12px", "margin": "8px 0"}


# ---------------------------------------------------------------------- who
def _settings():
    return runtime.current().settings


def is_trainer(p: Any) -> bool:
    """A trainer gets the trainer's page instead of the command screen (``trainers.is_trainer``)."""
    return trainers.is_trainer(_settings(), p)


def _trainer():
    """The signed-in trainer, or PermissionDenied (shown as one alert line)."""
    return trainers.require(_settings(), principal())


def _book():
    from command.drills.registry import registry
    return registry(_settings())


def examples() -> dict[str, Path]:
    return example_scenarios()


def _box(title: str, *children: Any, **kw: Any) -> html.Div:
    return html.Div([html.H3(title, style={"margin": "0 0 6px"}), *children], style=BOX, **kw)


def _msg(text: str, kind: str = "ok") -> html.Div:
    colour = "#1b5e20" if kind == "ok" else "#b3261e"
    return html.Div(text, className=f"yzt-alert yzt-alert-{kind}", style={"color": colour})


# ---------------------------------------------------------------------- the players' banner
def banner(ex: Any) -> html.Div:
    return html.Div([
        html.Span("演练 EXERCISE", id="exercise-banner-title"),
        html.Span(ex.name, id="exercise-banner-name"),
        html.Span(["演练时间 exercise time ", html.Span(ex.state()["clock"], id="exercise-banner-clock")]),
        html.Span(ex.phase, id="exercise-banner-state"),
        html.Span("仅演练预警 Exercise CAP only · 演练渠道 exercise channels only", style={"fontWeight": "normal"}),
        dcc.Interval(id="exercise-banner-tick", interval=1000),
        dcc.Store(id="exercise-banner-seq", data=0),
    ], id="exercise-banner", style=BANNER_STYLE, role="status")


@callback(Output("exercise-banner-clock", "children"), Output("exercise-banner-state", "children"),
          Output("exercise-banner-seq", "data"), Output("app-bump", "data", allow_duplicate=True),
          Input("exercise-banner-tick", "n_intervals"), State("exercise-banner-seq", "data"),
          State("app-bump", "data"), prevent_initial_call=True)
@guarded("view")
def banner_tick(_n: Any, seq: Any, bump: Any):
    """The exercise clock, and a refresh of the lists and the map when an inject has arrived (the
    dashboard's own poll reads the live store; a player's world is the exercise's)."""
    ex = runtime.current().exercise()
    if ex is None:
        return "—", "ended", no_update, no_update
    events = ex.service.store.events(since_seq=int(seq or 0))
    st = ex.state()
    if not events:
        return st["clock"], st["state"], no_update, no_update
    return st["clock"], st["state"], events[-1].seq, int(bump or 0) + 1


# ---------------------------------------------------------------------- the page
def page(settings: Any, header: Any) -> html.Div:
    from command.security.auth import Users
    users = [u for u in Users(runtime.current().store()).list() if not u["disabled"]]
    players = [u for u in users if u["role"] in ("officer", "commander")]
    return html.Div([
        header,
        html.Div([
            html.Div([_start_box(players), _control_box(players), _notes_box()],
                     style={"flex": "0 0 340px", "overflowY": "auto", "padding": "0 8px"}),
            html.Div([_msel_box(), _box("预期行动 Expected player actions", html.Div(id="trainer-expected")),
                      _report_box(), _playback_box()],
                     style={"flex": 1, "overflowY": "auto", "padding": "0 8px"}),
        ], style={"display": "flex", "height": "calc(100vh - 48px)"}),
        dcc.Interval(id="trainer-tick", interval=1000),
        dcc.Store(id="trainer-nonce", data=0),
        dcc.Store(id="trainer-phase"),
    ], id="trainer-root")


def _start_box(players: list[dict]) -> html.Div:
    return _box("开始演练 Start an exercise",
                html.Label("示例情景 Example scenario"),
                dcc.Dropdown(id="trainer-example", options=[{"label": n, "value": n} for n in examples()],
                             placeholder="选择示例 choose an example"),
                html.Label("或上传 or upload (YAML/JSON)"),
                dcc.Upload(id="trainer-upload", children=html.Div(["拖放或点击 drop or click"],
                                                                 id="trainer-upload-name"),
                           style={"border": "1px dashed #889", "padding": "6px", "cursor": "pointer"}),
                html.Label("参演人员 Players"),
                dcc.Dropdown(id="trainer-players", multi=True,
                             options=[{"label": f"{u['name']} ({u['role']})", "value": u["name"]}
                                      for u in players]),
                html.Label("倍速 Speed (1x-60x)"),
                dcc.Input(id="trainer-speed", type="number", min=1, max=60, step=1, value=60),
                html.Label("容差 Tolerance (exercise minutes)"),
                dcc.Input(id="trainer-tolerance", type="number", min=0, max=360, step=1, value=5),
                html.Div(html.Button("开始 Start", id="trainer-start", n_clicks=0), style={"marginTop": "6px"}))


def _control_box(players: list[dict]) -> html.Div:
    return _box("演练 Exercises",
                dcc.Dropdown(id="trainer-selected", placeholder="选择演练 choose an exercise"),
                html.Div(id="trainer-clock", style={"fontSize": "22px", "fontFamily": "monospace"}),
                html.Div(id="trainer-status"),
                html.Div([html.Button("暂停 Pause", id="trainer-pause", n_clicks=0),
                          html.Button("继续 Resume", id="trainer-resume", n_clicks=0),
                          html.Button("结束 End", id="trainer-end", n_clicks=0, className="danger")],
                         style={"display": "flex", "gap": "6px"}),
                html.Div([dcc.Input(id="trainer-jump-min", type="number", min=1, value=10,
                                    style={"width": "70px"}),
                          html.Button("跳转 Jump ahead (min)", id="trainer-jump", n_clicks=0)],
                         style={"display": "flex", "gap": "6px", "marginTop": "6px"}),
                html.Div([dcc.Dropdown(id="trainer-join-name", style={"minWidth": "160px"},
                                       options=[{"label": u["name"], "value": u["name"]} for u in players]),
                          html.Button("加入 Join late", id="trainer-join", n_clicks=0)],
                         style={"display": "flex", "gap": "6px", "marginTop": "6px"}),
                html.Div(id="trainer-msg"))


def _notes_box() -> html.Div:
    return _box("导调记录 Trainer notes (not on the players' timeline)",
                dcc.Textarea(id="trainer-note-text", style={"width": "100%", "height": "50px"}),
                html.Button("记录 Add note", id="trainer-note", n_clicks=0),
                html.Div(id="trainer-notes"))


def _msel_box() -> html.Div:
    return _box("主事件清单 MSEL: injects", html.Div(id="trainer-msel"),
                html.Details([html.Summary("添加注入 Add an inject not in the file"),
                              dcc.Dropdown(id="trainer-add-kind", value="update", clearable=False,
                                           options=[{"label": k, "value": k} for k in ("report", "update",
                                                                                       "note")]),
                              dcc.Textarea(id="trainer-add-spec", style={"width": "100%", "height": "70px"},
                                           placeholder='YAML, e.g. incident: A\ncasualties: {deaths: 5}'),
                              html.Button("注入 Inject", id="trainer-add", n_clicks=0)]))


def _report_box() -> html.Div:
    return _box("评估报告 After-action report",
                html.Div([html.Button("刷新 Refresh", id="trainer-report-refresh", n_clicks=0),
                          html.Button("下载 HTML", id="trainer-dl-html", n_clicks=0),
                          html.Button("下载 Markdown", id="trainer-dl-md", n_clicks=0)],
                         style={"display": "flex", "gap": "6px"}),
                dcc.Download(id="trainer-download"),
                html.Div(id="trainer-report"),
                html.Div([dcc.Dropdown(id="trainer-rate-cap", placeholder="capability",
                                       style={"minWidth": "200px"},
                                       options=[{"label": f"{zh} {en}", "value": k} for k, (zh, en) in
                                                _capabilities().items()]),
                          dcc.Dropdown(id="trainer-rate-value", placeholder="P/S/M/U", style={"width": "90px"},
                                       options=[{"label": k, "value": k} for k in "PSMU"]),
                          dcc.Input(id="trainer-rate-comment", placeholder="评语 comment (why)",
                                    style={"flex": 1}),
                          html.Button("调整 Adjust rating", id="trainer-rate", n_clicks=0)],
                         style={"display": "flex", "gap": "6px", "marginTop": "6px"}))


def _capabilities() -> dict:
    from command.drills.evaluation import CAPABILITIES
    return CAPABILITIES


def _playback_box():
    return _box("回放 Playback", playback.panel(prefix="trainer-pb"))


# ---------------------------------------------------------------------- callbacks
def _scenario_text(example: str | None, contents: str | None) -> str:
    from command.errors import ScenarioError
    if contents:
        try:
            _, b64 = contents.split(",", 1)
            return base64.b64decode(b64, validate=False).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ScenarioError("the uploaded file is not UTF-8 text (YAML or JSON)") from None
    path = examples().get(example or "")
    if path is None:
        raise ScenarioError("choose an example scenario or upload one")
    return path.read_text(encoding="utf-8")


@callback(Output("trainer-upload-name", "children"), Input("trainer-upload", "filename"),
          prevent_initial_call=True)
@guarded("view")
def upload_name(name: str | None):
    return name or "拖放或点击 drop or click"


@callback(Output("trainer-selected", "options", allow_duplicate=True), Output("trainer-selected", "value"),
          Output("trainer-msg", "children", allow_duplicate=True),
          Input("trainer-start", "n_clicks"), State("trainer-example", "value"), State("trainer-upload", "contents"),
          State("trainer-players", "value"), State("trainer-speed", "value"), State("trainer-tolerance", "value"),
          prevent_initial_call=True)
@guarded("view")
def start(n: int | None, example: str | None, contents: str | None, players: list | None, speed: Any,
          tolerance: Any):
    if not n:
        raise PreventUpdate
    try:
        who = _trainer()
        text = _scenario_text(example, contents)
        tol = int(round(float(tolerance if tolerance not in (None, "") else 5) * 60))
        ex = _book().start(text, speed=float(speed or 0), players=list(players or []), trainer=who.name,
                           tolerance_s=tol)
    except (ValueError, TypeError) as e:
        return no_update, no_update, _msg(str(e).splitlines()[0] if str(e) else type(e).__name__, "error")
    return _options(), ex.id, _msg(f"演练已开始 started: {ex.name} ({ex.id})")


def _options() -> list[dict]:
    return [{"label": f"{e.name} · {e.id} · {e.phase}", "value": e.id} for e in _book().all()]


@callback(Output("trainer-selected", "options"), Output("trainer-clock", "children"),
          Output("trainer-status", "children"), Output("trainer-msel", "children"),
          Output("trainer-expected", "children"), Output("trainer-notes", "children"),
          Output("trainer-phase", "data"),
          Input("trainer-tick", "n_intervals"), Input("trainer-selected", "value"), Input("trainer-nonce", "data"))
@guarded("view")
def refresh(_n: Any, ex_id: str | None, _nonce: Any):
    try:
        _trainer()
    except ValueError:
        raise PreventUpdate from None
    book = _book()
    options = _options()
    try:
        ex = book.get(ex_id) if ex_id else None
    except ValueError:
        ex = None
    if ex is None:
        return options, "—", "", "", "", "", None
    from command.drills.evaluation import action_name
    st = ex.state()
    status = html.Div([html.B(st["state"], id="trainer-state"), f" · {st['speed']:g}x · ",
                       f"injects {st['injects']['delivered']}/{st['injects']['total']} delivered, "
                       f"{st['injects']['failed']} failed · players: {', '.join(st['players']) or '—'}"])
    msel = html.Table([html.Thead(html.Tr([html.Th(h) for h in ("key", "due", "kind", "incident", "delivered",
                                                                  "")]))] +
                      [html.Tbody([html.Tr([
                          html.Td(m["key"]), html.Td(m["due"][11:19]), html.Td(m["kind"]), html.Td(m["incident"]),
                          html.Td((m["delivered_at"] or "")[11:19] + (" fired" if m["fired"] else "") +
                                  (f" ✗ {m['error']}" if m["error"] else "")),
                          html.Td(html.Button("立即 Fire now", id={"type": "trainer-fire", "key": m["key"]},
                                              n_clicks=0) if not m["delivered_at"] and st["state"] != "finished"
                                  else "")]) for m in st["msel"]])],
                      className="yzt-table", id="trainer-msel-table")
    expected = html.Table([html.Thead(html.Tr([html.Th(h) for h in ("event", "incident", "action", "due",
                                                                      "deadline", "status", "done at", "by")]))] +
                          [html.Tbody([html.Tr([
                              html.Td(r["event"]), html.Td(r["incident"]), html.Td(action_name(r)),
                              html.Td(r["due"][11:19]), html.Td(r["deadline"][11:19]),
                              html.Td(_status_text(r), className=f"trainer-status-{r['status']}"),
                              html.Td((r["done_at"] or "")[11:19]), html.Td(r["by"] or "")])
                              for r in st["expected"]])], className="yzt-table", id="trainer-expected-table")
    notes = html.Ul([html.Li(f"{n['at_s'] // 60:.0f} min · {n['by']}: {n['text']}") for n in ex.notes()])
    return options, st["clock"], status, msel, expected, notes, st["state"]


def _status_text(r: dict) -> str:
    if r["status"] == "done":
        return "done in time 按时" if r["in_time"] else f"done late 超时 +{r['late_by_s']} s"
    return r["status"]


@callback(Output("trainer-msg", "children", allow_duplicate=True), Output("trainer-nonce", "data"),
          Input("trainer-pause", "n_clicks"), Input("trainer-resume", "n_clicks"), Input("trainer-end", "n_clicks"),
          Input("trainer-jump", "n_clicks"), Input("trainer-join", "n_clicks"), Input("trainer-note", "n_clicks"),
          Input("trainer-add", "n_clicks"), Input({"type": "trainer-fire", "key": ALL}, "n_clicks"),
          State("trainer-selected", "value"), State("trainer-jump-min", "value"), State("trainer-join-name", "value"),
          State("trainer-note-text", "value"), State("trainer-add-kind", "value"), State("trainer-add-spec", "value"),
          State("trainer-nonce", "data"), prevent_initial_call=True)
@guarded("view")
def control(*args: Any):
    import yaml
    ex_id, jump_min, join_name, note_text, add_kind, add_spec, nonce = args[-7:]
    trig = ctx.triggered_id
    if not trig or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate
    try:
        who = _trainer()
        ex = _book().get(ex_id or "")
        if trig == "trainer-pause":
            ex.pause(by=who.name)
        elif trig == "trainer-resume":
            ex.resume(by=who.name)
        elif trig == "trainer-end":
            ex.end(by=who.name)
        elif trig == "trainer-jump":
            ex.jump(float(jump_min or 0) * 60, by=who.name)
        elif trig == "trainer-join":
            if not join_name:
                raise ValueError("choose the player who joins")
            other = _book().playing(join_name)
            if other is not None and other is not ex:
                raise ValueError(f"{join_name} already plays exercise {other.id}")
            ex.join(join_name, by=who.name)
        elif trig == "trainer-note":
            ex.note(note_text or "", by=who.name)
        elif trig == "trainer-add":
            spec = yaml.safe_load(add_spec or "") or {}
            if not isinstance(spec, dict):
                raise ValueError("an inject is a mapping (YAML), e.g. incident: A")
            ex.add_inject({"kind": add_kind, **spec}, by=who.name)
        elif isinstance(trig, dict) and trig.get("type") == "trainer-fire":
            ex.fire_now(trig["key"], by=who.name)
    except yaml.YAMLError as e:
        return _msg(f"not YAML: {str(e).splitlines()[0]}", "error"), no_update
    except (ValueError, TypeError) as e:
        return _msg(str(e).splitlines()[0] if str(e) else type(e).__name__, "error"), no_update
    _book().wake()
    return _msg("✓"), int(nonce or 0) + 1


@callback(Output("trainer-report", "children"), Input("trainer-report-refresh", "n_clicks"),
          Input("trainer-phase", "data"), Input("trainer-rate", "n_clicks"), State("trainer-selected", "value"),
          State("trainer-rate-cap", "value"), State("trainer-rate-value", "value"),
          State("trainer-rate-comment", "value"))
@guarded("view")
def render_report(_n: Any, _phase: Any, rate_n: Any, ex_id: str | None, cap: str | None, rating: str | None,
                  comment: str | None):
    try:
        who = _trainer()
        if not ex_id:
            return ""
        ex = _book().get(ex_id)
        error = None
        if ctx.triggered_id == "trainer-rate" and rate_n:
            try:
                ex.rate(cap or "", rating or "", comment or "", by=who.name)
            except ValueError as e:
                error = _msg(str(e), "error")
        return [error, report_view(ex.report())]
    except ValueError as e:
        return _msg(str(e).splitlines()[0], "error")


def report_view(rep: dict) -> html.Div:
    """The after-action report in the dashboard, in the guides' order: debrief, evaluation, summary."""
    from command.drills import evaluation as ev
    good, bad = ev._debrief(rep)

    def table(head, rows, tid):
        return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])),
                           html.Tbody([html.Tr([html.Td(str(c)) for c in r]) for r in rows])],
                          className="yzt-table", id=tid)
    return html.Div([
        html.P(ev._counts(rep), id="trainer-report-counts"),
        html.H4("一、现场点评 On-site debrief"),
        html.B("做得好的 Strengths"), html.Ul([html.Li(g) for g in good or ["—"]]),
        html.B("待改进 Areas for improvement"), html.Ul([html.Li(b) for b in bad or ["—"]]),
        html.H4("二、评估报告 Evaluation report"),
        html.B("事件位置 Incident locations"),
        table(ev.LOCATION_HEAD, ev.location_rows(rep), "trainer-report-locations"),
        table(ev.EXPECTED_HEAD, ev._expected_rows(rep), "trainer-report-expected"),
        dcc.Graph(figure=ev.timeline_figure(rep), id="trainer-report-timeline", config={"displaylogo": False}),
        html.B("计划外行动 Unexpected player actions"),
        table(ev.UNEXPECTED_HEAD, [[u["at"], u["incident"], u["kind"], u["by"], u["detail"]]
                                   for u in rep["unexpected"]], "trainer-report-unexpected"),
        html.B("能力评定 Capability ratings (HSEEP P/S/M/U)"),
        table(ev.CAP_HEAD, ev._cap_rows(rep), "trainer-report-capabilities"),
        html.B("系统指标 System targets"), table(ev.TARGET_HEAD, ev._target_rows(rep), "trainer-report-targets"),
        html.H4("三、演练总结 Summary"), html.P(ev._conclusion(rep)),
    ], id="trainer-report-body")


@callback(Output("trainer-download", "data"), Input("trainer-dl-html", "n_clicks"),
          Input("trainer-dl-md", "n_clicks"), State("trainer-selected", "value"), prevent_initial_call=True)
@guarded("view")
def download(_h: Any, _m: Any, ex_id: str | None):
    from command.drills import evaluation
    if not ex_id or not ctx.triggered_id:
        raise PreventUpdate
    try:
        _trainer()
        rep = _book().get(ex_id).report()
    except ValueError:
        raise PreventUpdate from None
    if ctx.triggered_id == "trainer-dl-md":
        return {"content": evaluation.to_markdown(rep), "filename": f"{ex_id}-aar.md"}
    return {"content": evaluation.to_html(rep), "filename": f"{ex_id}-aar.html"}
