"""Interface strings in zh-CN and en, rendered side by side and switched by CSS (no re-render, no reload).

    from command.dashboard.i18n import L, T
    html.Button(L("report.submit"))      # <span class="i18n-zh">上报</span><span class="i18n-en">Report</span>
    T("report.submit", "en")             # "Report": for attributes that cannot hold markup (title, tooltips)

The root element carries ``lang-zh`` or ``lang-en``; assets/yzt.css hides the other language.
Chinese comes first: an unknown language falls back to zh.
"""
from __future__ import annotations

from dash import html

STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("粤政图 应急指挥", "Yue Zheng Tu emergency command"),
    "app.actor": ("值班员", "Officer"),
    "app.lang": ("语言", "Language"),
    "app.internal": ("内部错误，已记录日志", "internal error, logged"),
    "app.closed": ("关闭", "Dismiss"),
    "report.title": ("事件上报", "Report an incident"),
    "report.address": ("地址（报警人所述）", "Address (as the caller said)"),
    "report.coords": ("坐标 经度,纬度（或点击地图）", "Coordinates lon,lat (or click the map)"),
    "report.datum": ("坐标系", "Datum"),
    "report.type": ("事件类型", "Type"),
    "report.deaths": ("死亡", "Deaths"),
    "report.serious": ("重伤", "Serious inj."),
    "report.missing": ("失踪", "Missing"),
    "report.loss": ("直接经济损失（元）", "Direct loss (CNY)"),
    "report.desc": ("情况描述", "Description"),
    "report.submit": ("上报", "Report"),
    "report.need_place": ("请填写地址或坐标（或点击地图）", "give an address or coordinates (or click the map)"),
    "report.need_type": ("请选择事件类型", "choose an incident type"),
    "report.done": ("已上报", "Reported"),
    "list.title": ("事件列表", "Incidents"),
    "list.level": ("级别", "Level"),
    "list.state": ("状态", "State"),
    "list.district": ("区县", "District"),
    "list.empty": ("暂无事件", "No incidents"),
    "state.open": ("处置中", "open"),
    "state.closed": ("已关闭", "closed"),
    "tab.nearby": ("周边资源", "Nearby"),
    "tab.cameras": ("视频墙", "Cameras"),
    "tab.group": ("工作组", "Group"),
    "tab.warn": ("预警发布", "Warn"),
    "tab.export": ("导出", "Export"),
    "detail.none": ("请在列表中选择或上报一个事件", "Select or report an incident"),
    "layer.hospital": ("医院", "Hospitals"),
    "layer.fire_station": ("消防站", "Fire stations"),
    "layer.shelter": ("避难场所", "Shelters"),
    "layer.camera": ("摄像机", "Cameras"),
    "layer.province": ("省界", "Province"),
    "layer.city": ("市界", "Cities"),
    "layer.district": ("区县界", "Districts"),
    "layer.incidents": ("事件", "Incidents"),
    "layer.basemap": ("底图", "Basemap"),
    "synthetic": ("模拟", "synthetic"),
    "real": ("真实", "real"),
    "col.rank": ("#", "#"),
    "col.name": ("名称", "Name"),
    "col.distance": ("距离(米)", "Distance (m)"),
    "col.drive": ("车程", "Drive time"),
    "col.info": ("信息", "Info"),
    "drive.road": ("路网", "road graph"),
    "drive.estimate": ("直线估算", "straight-line estimate"),
    "nearby.fly": ("点击行定位地图", "click a row to fly the map there"),
    "cam.covers": ("视角覆盖事发点", "view covers the incident"),
    "cam.nostream": ("无视频流 / no stream", "无视频流 / no stream"),
    "cam.simulate": ("无视频流时显示模拟画面", "show a simulated feed where there is no stream"),
    "cam.sim": ("模拟画面", "simulated"),
    "group.roster": ("工作组成员", "Roster"),
    "group.conference": ("视频会议", "Conference"),
    "group.tasks": ("任务", "Tasks"),
    "group.timeline": ("时间线", "Timeline"),
    "group.role": ("负责方", "Role"),
    "group.task_text": ("任务内容", "Task"),
    "group.add_task": ("添加任务", "Add task"),
    "group.done": ("完成", "Done"),
    "group.update": ("更新伤亡/损失", "Update casualties / loss"),
    "group.close": ("关闭事件", "Close incident"),
    "warn.radius": ("预警半径（米，留空按规则）", "Radius (m, empty = rule)"),
    "warn.instr_zh": ("防护指引（中文）", "Instruction (Chinese)"),
    "warn.instr_en": ("防护指引（英文）", "Instruction (English)"),
    "warn.mode": ("模式", "Mode"),
    "warn.exercise": ("演练 Exercise", "Exercise"),
    "warn.actual": ("正式 Actual", "Actual"),
    "warn.preview": ("预览", "Preview"),
    "warn.send": ("发布", "Send"),
    "warn.cancel": ("解除预警", "Cancel warning"),
    "warn.confirm_q": ("确认发布正式预警?", "Send a real (Actual) public warning?"),
    "warn.confirm_cancel_q": ("确认解除正式预警?", "Cancel the real (Actual) public warning?"),
    "warn.confirm": ("确认发布", "Confirm"),
    "warn.abort": ("返回", "Back"),
    "warn.population": ("覆盖人口", "Population reached"),
    "warn.units": ("行政区", "Admin units"),
    "warn.channels": ("发送渠道", "Channels"),
    "warn.no_channel": ("无可用渠道（请在设置中添加）", "no channel configured (add one in the settings)"),
    "warn.deliveries": ("投递状态", "Deliveries"),
    "warn.need_preview": ("请先预览", "preview first"),
    "warn.submitted": ("已提交发送", "submitted for delivery"),
    "warn.cancel_submitted": ("已提交解除", "cancel submitted"),
    "export.map": ("态势图 (HTML, 离线可用)", "Situation map (HTML, offline)"),
    "export.csv": ("资源表 CSV", "Resources CSV"),
    "export.geojson": ("资源表 GeoJSON", "Resources GeoJSON"),
    "legend.title": ("图例", "Legend"),
    "legend.no_tiles": ("无底图：显示行政区界", "no basemap: admin outlines shown"),
}


def T(key: str, lang: str = "zh") -> str:
    """The plain string of ``key`` in ``lang`` (zh first; unknown keys say so instead of failing)."""
    zh, en = STRINGS.get(key, (key, key))
    return en if lang == "en" else zh


def L(key: str) -> html.Span:
    """Both languages of ``key``; CSS shows the one the officer chose."""
    zh, en = STRINGS.get(key, (key, key))
    return html.Span([html.Span(zh, className="i18n-zh"), html.Span(en, className="i18n-en")])


def LL(zh: str, en: str) -> html.Span:
    """A bilingual span for text made at run time (names from data, numbers in sentences)."""
    return html.Span([html.Span(zh, className="i18n-zh"), html.Span(en, className="i18n-en")])
