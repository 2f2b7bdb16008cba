"""A deterministic synthetic county: eight townships (two per partition of four), about four months of 2026, 100,000 lines.

``write_config(path)`` writes the county's YAML; ``generate(path, lines, seed)`` writes the
event stream as JSON Lines (same seed, same bytes). The stream is built so that many rules
fire, the time-based ones included:

- sampling results (most lines): a few % unqualified, the rate differing by township so that
  ``sample.pass_rate_low`` fires at town and county level for some townships and not for
  others; some entities fail again and again (``entity.repeat_offender``); a few banned
  substances; rapid tests with 阴性 / 阳性;
- disposals for most unqualified samples, some after the deadline (``disposal_days: 20``,
  so ``sample.disposal_overdue`` falls inside the data); acks (签收) by the town office for
  half of the ``sample.unqualified`` notices, ``notice.unacknowledged`` on for the rest, and
  ``notice.unresolved`` for those signed for (签收) and never closed; every 97th sample taken
  35 days more before its report (``sample.lab_late``);
- inspections: 限期整改 with ``rectify_by`` and often a 复查 合格 before (or after) it,
  ``license_valid: false``, health certificates short, severe outcomes, 节前联合检查 in the
  春节 and 劳动节 windows for some townships only (``campaign.*``);
- monthly reports for most reporters, some late, some never (``report.*``);
- banquets (late registrations, large ones), incidents of several grades (some reported late,
  judged by ``hours_by_grade``);
- the register (台账, ``entity`` events): most entities imported before any other event, with
  dates years back; some years-old rows arriving mid-stream, some first registered in 2026;
  re-gradings and closures (注销) on the way, and a few conflicting re-sends (rejects); checked
  by ``inspection.frequency_due`` on 2 March and 15 April;
- rapid tests that fail, about half of them followed by a lab sample of the same entity and
  category, sometimes taken the day before, sometimes too late (``sample.rapid_unconfirmed``);
- one township silent for almost three weeks (``source.silent``);
- late arrivals (lines a few hours to days behind their event time), exact re-sends
  (duplicates) and a few dozen bad lines (rejects).
"""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

TZ = timezone(timedelta(hours=8))
START = datetime(2026, 1, 5, tzinfo=TZ)
END = datetime(2026, 4, 30, 20, tzinfo=TZ)
UNTIL = "2026-05-01T00:00:00"
DISPOSAL_DAYS = 20

# name, department prefix, reporters, share of unqualified samples
TOWNSHIPS = [
    ("红河镇", "hh", ["红河村", "新寨村", "坝心村", "镇卫生院"], 0.010),
    ("板桥镇", "bq", ["板桥村", "石桥村", "东庄村"], 0.025),
    ("出山镇", "cs", ["出山村", "桂李村"], 0.015),
    ("重渠乡", "cq", ["重渠村", "于庄村", "马庄村"], 0.080),
    ("权寨镇", "qz", ["权寨村", "秦庄村", "郭庄村", "镇卫生院"], 0.030),
    ("二郎乡", "el", ["二郎村", "王庄村"], 0.012),
    ("芦庙镇", "lm", ["芦庙村", "孙庄村", "李湾村"], 0.045),
    ("人和乡", "rh", ["人和村", "刘庄村"], 0.020),
]
SILENT = ("人和乡", datetime(2026, 3, 3, tzinfo=TZ), datetime(2026, 3, 22, tzinfo=TZ))
# who holds the 节前联合检查 before 春节 (17 Feb 2026) and before 劳动节 (1 May)
CAMPAIGN_SPRING = {"红河镇", "板桥镇", "出山镇", "权寨镇", "二郎乡", "芦庙镇"}
CAMPAIGN_MAY = {"红河镇", "重渠乡", "权寨镇", "芦庙镇", "人和乡"}
SPRING_WINDOW = (datetime(2026, 1, 18, tzinfo=TZ), datetime(2026, 2, 17, tzinfo=TZ))
MAY_WINDOW = (datetime(2026, 4, 1, tzinfo=TZ), datetime(2026, 5, 1, tzinfo=TZ))

CATEGORIES = {  # category -> foods, (item, unit, limit) of its routine test
    "蔬菜": (["韭菜", "芹菜", "菠菜", "豇豆", "油麦菜"], ("毒死蜱", "mg/kg", 0.02)),
    "水果": (["苹果", "梨", "香蕉", "葡萄"], ("克百威", "mg/kg", 0.02)),
    "粮食": (["小麦粉", "大米", "玉米面"], ("黄曲霉毒素B1", "μg/kg", 5.0)),
    "畜禽肉": (["猪肉", "牛肉", "鸡肉", "羊肉"], ("恩诺沙星", "μg/kg", 100.0)),
    "水产品": (["鲤鱼", "草鱼", "鲫鱼"], ("恩诺沙星", "μg/kg", 100.0)),
    "豆制品": (["豆腐", "腐竹"], ("苯甲酸", "g/kg", 1.0)),
    "酒类": (["白酒", "啤酒"], ("甲醇", "g/L", 0.6)),
    "饮料": (["果汁饮料", "茶饮料"], ("菌落总数", "CFU/mL", 100.0)),
}
CATEGORY_NAMES = list(CATEGORIES)
BANNED = {"畜禽肉": "克伦特罗", "水产品": "孔雀石绿"}
ENTITY_TYPES = ["餐饮服务", "食品销售", "学校食堂", "集体食堂", "小作坊", "小摊贩", "集贸市场", "屠宰场", "食品生产"]
ENTITY_WORDS = ["惠民", "家家乐", "老王", "福满", "兴旺", "金源", "百姓", "顺发", "永和", "同心", "丰收", "长青"]
ENTITY_KINDS = ["超市", "饭店", "蔬菜摊", "肉铺", "面馆", "豆腐坊", "批发部", "食堂", "鱼店", "便利店"]
ENTITIES_PER_TOWNSHIP = 400
OFFENDERS_PER_TOWNSHIP = 25


def config_yaml() -> str:
    lines = [
        "timezone: Asia/Shanghai",
        "county: {name: 西平县, office: county-fso, escalation: [county-lead]}",
        "max_jump_days: 60",
        "dedup_days: 400",
        "departments:",
        "  county-fso: {name: 县食安办}",
        "  county-lead: {name: 县食安办分管领导}",
    ]
    for name, pre, _, _ in TOWNSHIPS:
        lines += [f"  {pre}-fso: {{name: {name}食安办}}", f"  {pre}-agri: {{name: {name}农技中心}}",
                  f"  {pre}-vet: {{name: {name}畜牧站}}"]
    lines.append("townships:")
    for name, pre, reporters, _ in TOWNSHIPS:
        lines += [
            f"  {name}:",
            f"    office: {pre}-fso",
            f"    reporters: [{', '.join(reporters)}]",
            f"    routing: {{蔬菜: {pre}-agri, 水果: {pre}-agri, 粮食: {pre}-agri, 畜禽肉: {pre}-vet, "
            f"水产品: {pre}-vet, 屠宰场: {pre}-vet}}",
        ]
    lines += [
        "rules:",
        f"  sample.unqualified: {{disposal_days: {DISPOSAL_DAYS}}}",
        "  notice.unacknowledged: {enabled: true}",
        "  notice.unresolved: {enabled: true}",
        "  sample.lab_late: {enabled: true}",
        "  sample.rapid_unconfirmed: {enabled: true}",
        '  inspection.frequency_due: {checks: {"03-02": 0.25, "04-15": 0.5, "12-01": 1.0}}',
        "  incident.late_report: {hours_by_grade: {Ⅱ: 1, Ⅲ: 2, Ⅳ: 4}}",
        "notifiers: {}",
    ]
    return "\n".join(lines) + "\n"


def write_config(path: Path) -> Path:
    path.write_text(config_yaml(), encoding="utf-8")
    return path


def _nid(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")  # local time, no offset (the config's zone)


def register(add, entities: dict[str, list[dict]], rnd: random.Random, moment) -> None:
    """The register: three quarters of the entities, most imported before the first event."""
    before = START - timedelta(hours=1)
    for name, pre, _, _ in TOWNSHIPS:
        for i, ent in enumerate(entities[name]):
            u = rnd.random()
            if u >= 0.75:
                continue  # not in the register
            row = {"type": "entity", "id": f"TZ-{pre.upper()}-{i:04d}", "township": name, **ent,
                   "risk_level": rnd.choice("AABBBCCD")}
            if u < 0.04:  # first registered during 2026: not checked this year
                at = START + timedelta(days=rnd.randrange(100), hours=9)
                add({**row, "registered_at": _iso(at)}, at)
                continue
            registered = datetime(2015 + rnd.randrange(11), 1 + rnd.randrange(12), 1 + rnd.randrange(28), tzinfo=TZ)
            add({**row, "registered_at": registered.date().isoformat()}, registered,
                before if u < 0.65 else moment())  # else a years-old row arriving mid-stream
            v = rnd.random()
            if v < 0.12:  # re-graded, or closed (注销), some time this year; entered up to three days later
                at = moment()
                later = {**row, "risk_level": rnd.choice("ABCD"), "registered_at": _iso(at)}
                if v < 0.04:
                    later["status"] = "注销"
                add(later, at, at + timedelta(hours=rnd.randrange(0, 72)))
            elif v < 0.13:  # the same row again with another grade and the same date: rejected
                add({**row, "risk_level": "D" if row["risk_level"] != "D" else "A",
                     "registered_at": registered.date().isoformat()}, registered, moment())


def confirm(add, rapid: dict, rnd: random.Random) -> None:
    """Half the failed rapid tests get a lab sample of the same entity and category: taken from
    the day before the rapid test to three days after it, reported 1 to 12 days after that."""
    if rnd.random() >= 0.5:
        return
    sampled = datetime.fromisoformat(rapid["sampled_at"]).replace(tzinfo=TZ) + timedelta(hours=rnd.randrange(-30, 72))
    reported = sampled + timedelta(days=rnd.randrange(1, 12), hours=rnd.randrange(8))
    item, unit, limit = CATEGORIES[rapid["category"]][1]
    lab = {"type": "sampling_result", "id": f"{rapid['id']}-QR", "program": "food_sampling",
           "township": rapid["township"], "sampled_at": _iso(sampled), "reported_at": _iso(reported),
           "entity": rapid["entity"], "category": rapid["category"], "food": rapid["food"],
           "items": [{"item": item, "value": round(limit * rnd.random(), 4), "unit": unit, "limit": limit}]}
    if "entity_id" in rapid:
        lab["entity_id"] = rapid["entity_id"]
    add(lab, reported)


def generate(path: Path, lines: int = 100_000, seed: int = 20260501) -> dict[str, int]:
    """Writes exactly ``lines`` lines to ``path``; returns counts per kind of line."""
    rnd = random.Random(seed)
    span = int((END - START).total_seconds())
    out: list[tuple[float, int, str]] = []  # (arrival time, sequence, line)
    counts: dict[str, int] = {}

    def add(ev: dict, t: datetime, arrive: datetime | None = None) -> bool:
        """``t`` the event time; the line arrives in the stream at ``arrive`` (default ``t``).
        Events of the silent township in its silence and events after ``END`` are left out."""
        if arrive is None:
            arrive = t
        tw, when = ev["township"], arrive
        if (tw == SILENT[0] and SILENT[1] <= when < SILENT[2]) or t > END:
            return False
        out.append((when.timestamp(), len(out), json.dumps(ev, ensure_ascii=False)))
        counts[ev["type"]] = counts.get(ev["type"], 0) + 1
        return True

    def moment() -> datetime:
        return START + timedelta(seconds=rnd.randrange(span))

    def workhours(day: datetime) -> datetime:
        return day.replace(hour=8, minute=0, second=0) + timedelta(seconds=rnd.randrange(10 * 3600))

    entities = {}
    for name, pre, _, _ in TOWNSHIPS:
        pool = []
        for i in range(ENTITIES_PER_TOWNSHIP):
            ent = {"entity": f"{rnd.choice(ENTITY_WORDS)}{rnd.choice(ENTITY_KINDS)}{i:03d}号"}
            if rnd.random() < 0.7:
                ent["entity_id"] = f"92411721MA{pre.upper()}{i:05d}X"
            ent["entity_type"] = rnd.choice(ENTITY_TYPES)
            pool.append(ent)
        entities[name] = pool

    # --- monthly reports, banquets, incidents: fixed numbers -------------------------------
    for name, _, reporters, _ in TOWNSHIPS:
        for month in (1, 2, 3, 4):
            for r_i, reporter in enumerate(reporters):
                u = rnd.random()
                if u < 0.10:
                    continue  # never reported: overdue, escalation
                if u < 0.25 and month < 4:
                    day = datetime(2026, month, 26, tzinfo=TZ) + timedelta(days=rnd.randrange(12))
                else:
                    day = datetime(2026, month, 6 + rnd.randrange(18), tzinfo=TZ)
                t = workhours(day)
                add({"type": "monthly_report", "id": f"YB-{name}-{reporter}-2026{month:02d}", "reporter": reporter,
                     "township": name, "period": f"2026-{month:02d}", "submitted_at": _iso(t)}, t)
    for i in range(400):
        name = TOWNSHIPS[i % len(TOWNSHIPS)][0]
        held = moment().replace(hour=11, minute=30, second=0)
        registered = held - timedelta(minutes=rnd.randrange(-120, 96 * 60))
        ev = {"type": "banquet", "id": f"YX-{i:04d}", "township": name, "village": rnd.choice(TOWNSHIPS[i % 8][2]),
              "host": f"村民{i:04d}", "held_at": _iso(held), "registered_at": _iso(registered),
              "guests": rnd.randrange(20, 320)}
        if rnd.random() < 0.5:
            ev["chef"], ev["chef_health_cert"] = f"厨师{i % 37}", rnd.random() < 0.9
        add(ev, registered)
    for i in range(24):
        name = TOWNSHIPS[rnd.randrange(len(TOWNSHIPS))][0]
        reported = moment()
        occurred = reported - timedelta(minutes=rnd.randrange(20, 8 * 60))
        add({"type": "incident", "id": f"SJ-{i:03d}", "township": name, "occurred_at": _iso(occurred),
             "reported_at": _iso(reported), "kind": rnd.choice(["食物中毒", "食源性疾病聚集"]),
             "cases": rnd.randrange(2, 40), "grade": rnd.choice(["Ⅳ", "Ⅳ", "Ⅲ", "Ⅱ", "一般"])}, reported)

    register(add, entities, rnd, moment)

    # --- inspections ------------------------------------------------------------------------
    for i in range(11_000):
        name = TOWNSHIPS[rnd.randrange(len(TOWNSHIPS))][0]
        t = moment()
        ent = rnd.choice(entities[name])
        itype = rnd.choice(["日常检查", "日常检查", "双随机", "专项检查"])
        if ((name in CAMPAIGN_SPRING and SPRING_WINDOW[0] <= t < SPRING_WINDOW[1])
                or (name in CAMPAIGN_MAY and MAY_WINDOW[0] <= t < MAY_WINDOW[1])) and rnd.random() < 0.15:
            itype = "节前联合检查"
        staff = rnd.randrange(1, 25)
        certified = staff if rnd.random() < 0.96 else max(0, staff - rnd.randrange(1, 3))
        u = rnd.random()
        outcome = "合格" if u < 0.86 else "限期整改" if u < 0.995 else rnd.choice(["责令停业", "立案查处"])
        ev = {"type": "inspection", "id": f"JC-{i:05d}", "township": name, "inspected_at": _iso(t), **ent,
              "inspection_type": itype, "license_valid": rnd.random() > 0.01, "staff_total": staff,
              "staff_with_health_cert": certified, "grade": rnd.choice("ABC"), "outcome": outcome}
        if outcome == "限期整改":
            rectify = (t + timedelta(days=rnd.randrange(5, 21))).date()
            ev["rectify_by"] = rectify.isoformat()
            ev["findings"] = ["从业人员健康证过期", "防蝇设施不完善"][: rnd.randrange(1, 3)]
            if rnd.random() < 0.65:  # a re-inspection, mostly in time
                back = t + timedelta(days=rnd.randrange(1, 26), hours=rnd.randrange(0, 8))
                add({"type": "inspection", "id": f"FC-{i:05d}", "township": name, "inspected_at": _iso(back),
                     **ent, "inspection_type": "复查", "license_valid": True, "outcome": "合格"}, back)
        late = outcome == "合格" and rnd.random() < 0.01
        add(ev, t, t + timedelta(hours=rnd.randrange(2, 72)) if late else None)

    # --- the bad lines (rejects) and the re-sends (duplicates) are added at the end --------
    bad = 40
    resend = 300
    fixed = len(out)
    samples = lines - fixed - bad - resend
    # unqualified samples may add a disposal and an ack: draw samples until the count is met
    n = 0
    while len(out) < fixed + samples:
        name, pre, _, rate = TOWNSHIPS[rnd.randrange(len(TOWNSHIPS))]
        t = moment()
        u = rnd.random()
        program = "food_sampling" if u < 0.6 else "agri_monitoring" if u < 0.9 else "rapid_test"
        cat = rnd.choice(CATEGORY_NAMES)
        foods, (item, unit, limit) = CATEGORIES[cat]
        fail = rnd.random() < rate
        pool = entities[name]
        ent = rnd.choice(pool[:OFFENDERS_PER_TOWNSHIP] if fail and rnd.random() < 0.4 else pool)
        sid = f"CJ-{pre.upper()}-{n:06d}"
        n += 1
        ev = {"type": "sampling_result", "id": sid, "program": program, "township": name,
              "sampled_at": _iso(t - timedelta(days=rnd.randrange(1, 6) + (35 if n % 97 == 0 else 0))),  # some lab late
              "reported_at": _iso(t), "entity": ent["entity"], "category": cat, "food": rnd.choice(foods)}
        if "entity_id" in ent:
            ev["entity_id"] = ent["entity_id"]
        banned = fail and cat in BANNED and rnd.random() < 0.15
        if program == "rapid_test":
            ev["items"] = [{"item": f"{item}（快检）", "value": "阳性" if fail else "阴性"}]
        else:
            value = round(limit * (1.2 + rnd.random()) if fail else limit * rnd.random() * 0.9, 4)
            ev["items"] = [{"item": item, "value": value, "unit": unit, "limit": limit}]
            if rnd.random() < 0.3:
                ev["items"].append({"item": "铅（以Pb计）", "value": "未检出", "unit": "mg/kg", "limit": 0.2})
        if banned:
            ev["items"].append({"item": BANNED[cat], "value": round(0.5 + rnd.random(), 3), "unit": "μg/kg",
                                "limit": None, "result": "不合格"})
        late = not fail and rnd.random() < 0.005
        added = add(ev, t, t + timedelta(hours=rnd.randrange(2, 60)) if late else None)
        if added and fail and program == "rapid_test":
            confirm(add, ev, rnd)
        if added and fail:
            if rnd.random() < 0.7:
                disposed = t + timedelta(days=rnd.randrange(1, 26), hours=rnd.randrange(8))
                add({"type": "disposal", "id": f"CZ-{sid}", "sample_id": sid, "township": name,
                     "disposed_at": _iso(disposed), "measures": ["下架", "复检"]}, disposed)
            if rnd.random() < 0.5 and t + timedelta(hours=150) < END:
                rule = "sample.banned_substance" if banned else "sample.unqualified"
                acked = t + timedelta(minutes=rnd.randrange(30, 150 * 60))
                add({"type": "ack", "id": f"QS-{sid}", "township": name, "notice_id": _nid(f"{rule}|{name}|{sid}"),
                     "by": f"{pre}-fso", "action": rnd.choice(["签收", "办结"]), "acked_at": _iso(acked)}, acked)
    del out[fixed + samples:]  # the last sample may have brought a disposal or an ack along

    out.sort()
    body = [line for _, _, line in out]
    # exact re-sends of earlier lines, some way behind the original
    for _ in range(resend):
        i = rnd.randrange(len(body) - 1000)
        body.insert(i + rnd.randrange(1, 1000), body[i])
    counts["duplicate"] = resend
    for k in range(bad):
        kind = k % 5
        where = rnd.randrange(5000, len(body))
        if kind == 0:
            line = '{"type": "inspection", "id": "BAD-%d", "township": ' % k  # not JSON
        elif kind == 1:
            line = json.dumps({"type": "incident", "id": f"BAD-{k}", "township": "不存在镇",
                               "occurred_at": "2026-02-01T08:00:00", "reported_at": "2026-02-01T09:00:00",
                               "kind": "食物中毒"}, ensure_ascii=False)
        elif kind == 2:  # a typo in the year: far ahead of the clock
            line = json.dumps({"type": "monthly_report", "id": f"BAD-{k}", "reporter": "红河村",
                               "township": "红河镇", "period": "2026-02",
                               "submitted_at": "2062-02-10T09:00:00"}, ensure_ascii=False)
        elif kind == 3:  # required fields missing
            line = json.dumps({"type": "banquet", "id": f"BAD-{k}", "township": "板桥镇",
                               "host": "村民", "held_at": "2026-03-01T11:00:00"}, ensure_ascii=False)
        else:  # the id of an earlier sample or inspection, with different content
            while True:
                first = rnd.randrange(len(body) - 100)
                obj = json.loads(body[first])
                if obj["type"] in ("sampling_result", "inspection"):
                    break
            obj["entity"] += "（改）"
            line = json.dumps(obj, ensure_ascii=False)
            where = first + rnd.randrange(1, 100)
        body.insert(where, line)
    counts["bad"] = bad
    assert len(body) == lines, len(body)
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return counts
