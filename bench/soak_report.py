"""What `bench.soak` makes of its samples: levels, slopes, bytes per item, projections, problems, the table.

Slopes are least-squares fits over the second half of the feeding phase (the
first half is the climb to the plateau), in units per minute. Bytes per item
of a family = its mean bytes over that half / the items `keys.FAMILIES`
says it holds at the run's settings and measured rate, so a measured figure
can be set beside the declared one and the projection made again with it.
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from bench.soak_probe import RQ_GROUP
from services.common.keys import DEMO_RATES, FAMILIES, Rates, project
from services.common.keyspace import UNKNOWN
from services.common.settings import Settings

RATES_1K = Rates(ticks=1000.0)
KIB, MIB = 1024, 1024 * 1024


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute; None with fewer than two distinct times."""
    if len(points) < 2:
        return None
    mean_t = fmean(t for t, _ in points)
    mean_y = fmean(y for _, y in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60.0 * sum((t - mean_t) * (y - mean_y) for t, y in points) / var


def _fit(samples: list[dict[str, Any]], value: Any) -> tuple[float | None, float | None]:
    """(slope per minute, mean) of value(sample) over `samples`, skipping samples where it is None."""
    points = [(s["t"], v) for s in samples if (v := value(s)) is not None]
    return slope_per_min(points), (fmean(v for _, v in points) if points else None)


def family_rows(
    feeding: list[dict[str, Any]], half: list[dict[str, Any]], settings: Settings, rates: Rates
) -> list[dict[str, Any]]:
    end = feeding[-1]["redis"]
    defaults = Settings.model_construct()  # the shipped defaults, whatever the environment says
    at = {
        "run": project(settings, rates),
        "demo": project(settings, DEMO_RATES),
        "ticks_1000": project(settings, RATES_1K),
        "demo_default_settings": project(defaults, DEMO_RATES),
        "ticks_1000_default_settings": project(defaults, RATES_1K),
    }
    rows = []
    for family in FAMILIES:
        slope, level = _fit(half, lambda s, n=family.name: s["redis"]["families"].get(n, {}).get("bytes", 0))
        items = family.items(settings, rates)
        measured = level / items if level is not None and items > 0 else None
        rows.append(
            {
                "family": family.name,
                "bound": family.bound,
                "setting": family.setting,
                "keys_end": end["families"].get(family.name, {}).get("keys", 0),
                "bytes_end": end["families"].get(family.name, {}).get("bytes", 0),
                "bytes_mean_last_half": level,
                "slope_bytes_per_min": slope,
                "keys_max": max(s["redis"]["families"].get(family.name, {}).get("keys", 0) for s in feeding),
                "without_ttl_max": max(
                    s["redis"]["families"].get(family.name, {}).get("without_ttl", 0) for s in feeding
                ),
                "items_at_run_rate": items,
                "bytes_per_item_measured": measured,
                "bytes_per_item_declared": family.item_bytes,
                **{f"projected_{k}": v[family.name] for k, v in at.items()},
                "from_measured_demo_default_settings": _remeasured(measured, family.items(defaults, DEMO_RATES)),
                "from_measured_1000_default_settings": _remeasured(measured, family.items(defaults, RATES_1K)),
            }
        )
    for name, get in (
        (RQ_GROUP, lambda s: s["redis"]["rq"]),
        (UNKNOWN, lambda s: s["redis"]["families"].get(UNKNOWN, {"keys": 0, "bytes": 0})),
    ):
        slope, level = _fit(half, lambda s, g=get: g(s)["bytes"])
        rows.append(
            {
                "family": name,
                "keys_end": get(feeding[-1])["keys"],
                "bytes_end": get(feeding[-1])["bytes"],
                "bytes_mean_last_half": level,
                "slope_bytes_per_min": slope,
                "keys_max": max(get(s)["keys"] for s in feeding),
            }
        )
    return rows


def _remeasured(bytes_per_item: float | None, items: float) -> int | None:
    return None if bytes_per_item is None else int(bytes_per_item * items)


def series_rows(
    feeding: list[dict[str, Any]], half: list[dict[str, Any]], names: set[str], value: Any
) -> list[dict[str, Any]]:
    """End value, maximum and last-half slope of value(sample, name) per name."""
    rows = []
    for name in sorted(names):
        slope, level = _fit(half, lambda s, n=name: value(s, n))
        seen = [v for s in feeding if (v := value(s, name)) is not None]
        rows.append(
            {
                "name": name,
                "end": value(feeding[-1], name),
                "max": max(seen) if seen else None,
                "mean_last_half": level,
                "slope_per_min": slope,
            }
        )
    return rows


def analyse(
    samples: list[dict[str, Any]], settings: Settings, rates: Rates, rows_by_table: dict[str, int]
) -> dict[str, Any]:
    feeding = [s for s in samples if s["phase"] == "feed"]
    fed_s = feeding[-1]["t"]
    half = [s for s in feeding if s["t"] >= fed_s / 2]
    last_third = [s for s in feeding if s["t"] >= fed_s * 2 / 3]
    families = family_rows(feeding, half, settings, rates)
    used_slope, used_mean = _fit(half, lambda s: s["redis"]["used_memory"])
    redis = {
        "used_memory_end": feeding[-1]["redis"]["used_memory"],
        "used_memory_mean_last_half": used_mean,
        "used_memory_max_last_third": max(s["redis"]["used_memory"] for s in last_third),
        "used_memory_slope_per_min": used_slope,
        **{k: sum(r.get(k) or 0 for r in families if "bound" in r) for k in _PROJECTIONS},
    }
    relations = {name: rel for s in feeding for name, rel in s["postgres"].items()}
    tables = {rel["table"] for rel in relations.values()}

    def table_value(key: str) -> Any:
        return lambda s, t: sum(r[key] for r in s["postgres"].values() if r["table"] == t) or None

    postgres = series_rows(feeding, half, tables, table_value("total"))
    for row, indexes in zip(postgres, series_rows(feeding, half, tables, table_value("indexes")), strict=True):
        row["indexes_end"] = indexes["end"]
        row["rows"] = rows_by_table.get(row["name"])
        row["bytes_per_row"] = row["end"] / row["rows"] if row["rows"] and row["end"] else None
    partitions = series_rows(
        feeding,
        half,
        {n for n, r in relations.items() if n != r["table"]},
        lambda s, n: s["postgres"].get(n, {}).get("total"),
    )
    processes = series_rows(
        feeding, half, {n for s in feeding for n in s["rss"]}, lambda s, n: s["rss"].get(n)
    )  # fmt: skip
    return {
        "fed_s": fed_s,
        "families": families,
        "redis": redis,
        "processes": processes,
        "postgres": {"tables": postgres, "partitions": partitions},
    }


_PROJECTIONS = (
    "projected_run",
    "projected_demo",
    "projected_ticks_1000",
    "projected_demo_default_settings",
    "projected_ticks_1000_default_settings",
    "from_measured_demo_default_settings",
    "from_measured_1000_default_settings",
)


def problems(samples: list[dict[str, Any]], families: list[dict[str, Any]]) -> list[str]:
    """What must not happen in any sample: keys of no family, keys of a TTL-bound family without a TTL."""
    out = []
    unknown = [s for s in samples if s["redis"]["families"].get(UNKNOWN, {}).get("keys")]
    if unknown:
        worst = max(unknown, key=lambda s: s["redis"]["families"][UNKNOWN]["keys"])
        out.append(
            f"{worst['redis']['families'][UNKNOWN]['keys']} keys of no family (at {worst['t']} s),"
            f" e.g. {', '.join(worst['redis']['unknown_names'])}"
        )
    for row in families:
        if row.get("bound") == "ttl" and row["without_ttl_max"]:
            out.append(f"family {row['family']} is TTL-bound but had {row['without_ttl_max']} keys without a TTL")
    return out


# --- the table ---------------------------------------------------------------------


def size(n: float | None) -> str:
    if n is None:
        return "-"
    if abs(n) >= MIB:
        return f"{n / MIB:.2f} MiB"
    if abs(n) >= KIB:
        return f"{n / KIB:.1f} KiB"
    return f"{n:.0f} B"


def rate(n: float | None) -> str:
    return "-" if n is None else ("+" if n >= 0 else "-") + size(abs(n)) + "/min"


def _per_item(n: float | None) -> str:
    return "-" if n is None else f"{n:.0f}" if n >= 10 else f"{n:.2f}"


def table(result: dict[str, Any]) -> str:
    a = result["analysis"]
    r, rates = a["redis"], result["rates"]["run"]
    lines = [
        f"soak: {a['fed_s']:.0f} s at {rates['ticks']:.0f} ticks/s + {rates['events']:.1f} events/s"
        f" ({rates['trades']:.1f} trades/s, {rates['symbols']} symbols); overrides: "
        + (" ".join(f"{k}={v}" for k, v in result["args"]["env"].items()) or "none"),
        "",
        "| family | keys | bytes | slope (last half) | B/item measured | B/item declared"
        " | projected at run rate | at demo rate | at 1,000 ticks/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in a["families"]:
        lines.append(
            f"| {f['family']} | {f['keys_end']} | {size(f['bytes_end'])} | {rate(f['slope_bytes_per_min'])}"
            f" | {_per_item(f.get('bytes_per_item_measured'))} | {f.get('bytes_per_item_declared', '-')}"
            + "".join(f" | {size(f.get(k))}" for k in ("projected_run", "projected_demo", "projected_ticks_1000"))
            + " |"
        )
    lines.append(
        f"| **Redis used_memory** | | {size(r['used_memory_end'])} | {rate(r['used_memory_slope_per_min'])} | | "
        f"| {size(r['projected_run'])} | {size(r['projected_demo'])} | {size(r['projected_ticks_1000'])} |"
    )
    lines += [
        "",
        "Projected with the default settings (declared bytes per item): demo rate"
        f" {size(r['projected_demo_default_settings'])},"
        f" 1,000 ticks/s {size(r['projected_ticks_1000_default_settings'])}; with the bytes per item measured here:"
        f" {size(r['from_measured_demo_default_settings'])} and {size(r['from_measured_1000_default_settings'])}.",
        f"Redis used_memory before the stack started: {size(result['redis_baseline_used_memory'])}.",
        "",
        "| process | RSS | max | slope (last half) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {p['name']} | {size(p['end'])} | {size(p['max'])} | {rate(p['slope_per_min'])} |" for p in a["processes"]
    ]
    lines += ["", "| table | rows | total | indexes | slope (last half) | B/row |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {t['name']} | {t['rows'] if t['rows'] is not None else '-'} | {size(t['end'])} | {size(t['indexes_end'])}"
        f" | {rate(t['slope_per_min'])} | {_per_item(t['bytes_per_row'])} |"
        for t in a["postgres"]["tables"]
    ]
    if a["postgres"]["partitions"]:
        lines += ["", "| partition | total | slope (last half) |", "|---|---|---|"]
        lines += [
            f"| {p['name']} | {size(p['end'])} | {rate(p['slope_per_min'])} |" for p in a["postgres"]["partitions"]
        ]
    d = result["delivery"]["ticks"]
    lines += [
        "",
        f"ticks: {d['acknowledged']} acknowledged, {d['persisted']} in Postgres, {d['missing']} missing,"
        f" {d['duplicates']} duplicated; refused answers (API): {result['refused_answers']};"
        f" feeder errors: {result['feeder']['errors_by_cause'] or 'none'}",
    ]
    lines += [f"!! {p}" for p in result["problems"]]
    return "\n".join(lines) + "\n"
