"""The speed/quality frontier of an ensemble and the fit of its cascade margins, from saved per-view outputs.

Reads what evalkit.view_outputs saved (no model runs) and decides each image with core's own code
(Ensemble.to_predictions, the intake check, core.decision.gate.decide) for a part of the ensemble: members x views.

    frontier   members (1, 2, 3, 5, all; greedy order on validation) x views (1, 2, 4, 9): AUCs, cleared
               malignancies / melanomas / benign lesions, agreement with the full ensemble, ms per image
    fit        the margins of configs/recipes/cascade-2026.12.07.yaml on validation; writes cascade.json
    score      the fitted margins on held-out sets, once (agreement, malignancies cleared that the full
               ensemble holds)

    python -m evalkit.cascade_fit frontier --outputs ../cache/cascade/outputs
    python -m evalkit.cascade_fit fit --outputs ../cache/cascade/outputs --save ../cache/cascade/cascade.json
    python -m evalkit.cascade_fit score --outputs ../cache/cascade/outputs --margins ../cache/cascade/cascade.json
    python -m evalkit.cascade_fit write --margins ../cache/cascade/cascade.json --out ../cache/cascade/candidate
        (a copy of the bundle with the margins in its manifest, unsigned: sign it with export.sign)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common.auc import roc_auc
from core.decision.cascade import CascadeMargins, StopMargins, settled
from core.decision.results import Decision
from core.decision.vocabulary import outcome_code_of
from core.inference.bundle import load_bundle
from core.inference.ensemble import EnsembleSettings, RawOutputs
from core.screening import Screener
from core.screening.deciding import decide_image, picture_flagged

from .cascade_views import load_quality, saved_views, view_index
from .labelled import PROJECT_ROOT, SHARED_DATA

VALIDATION = ("ham_val", "isic2017_val")
CLEARED = Decision.NO_CANCER_SUSPECTED  # "no cancer suspected"
HELD_OUT = ("ham_test", "derm7pt")
VIEW_SUBSETS = {1: ("id",), 2: ("id", "flip"), 4: ("id", "rot180", "flip", "flip_rot180")}
MEMBER_SIZES = (1, 2, 3, 5)
STAGE1_SIZES = (1, 2, 3)
STAGE1_VIEWS = (1, 2, 4)
CLEAR_FACTOR, SUSPICIOUS_FACTOR = 0.8, 1.25  # the recipe's safety margins
SPREAD_SHARE, INTAKE_SHARE = 0.5, 0.8


@dataclass
class Outputs:
    ids: list[str]
    logits: np.ndarray  # N x M x V x K
    ood: np.ndarray | None  # N x M x V
    statistics: np.ndarray  # N x d (NaN rows: none)
    quality: list
    dx: list[str]
    images_per_s: float


def _labels() -> dict[str, str]:
    dx: dict[str, str] = {}
    for path in (
        PROJECT_ROOT / "configs/splits/ham10000_lesion_split.csv",
        SHARED_DATA / "isic2017" / "labels.csv",
        SHARED_DATA / "derm7pt" / "labels.csv",
    ):
        with open(path, newline="") as fh:
            dx.update({r["image_id"]: r["dx"] for r in csv.DictReader(fh)})
    return dx


def load_outputs(folder: Path, sets: tuple[str, ...]) -> Outputs:
    ids, logits, ood, stats, quality = [], [], [], [], []
    for name in sets:
        for npz in sorted((folder / name).glob("chunk-*.npz")):
            pkl = npz.with_suffix(".pkl")
            if not pkl.exists():
                continue
            d = np.load(npz)
            ids += [str(i) for i in d["image_ids"]]
            logits.append(d["logits"])
            ood.append(d["ood"])
            stats.append(d["statistics"])
            quality += load_quality(pkl)
    if not ids:
        raise SystemExit(f"no saved outputs of {', '.join(sets)} under {folder}")
    keep = [i for i, q in enumerate(quality) if q is not None]  # files that could not be used: no outcome
    labels = _labels()
    rates = []
    log = folder / "log.jsonl"
    if log.exists():
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["set"] in sets]
        rates = [sum(r["images"] for r in rows) / max(1e-9, sum(r["s"] for r in rows))] if rows else []
    all_ood = np.concatenate(ood) if all(o.size for o in ood) else None
    return Outputs(
        ids=[ids[i] for i in keep],
        logits=np.concatenate(logits)[keep],
        ood=None if all_ood is None else all_ood[keep],
        statistics=np.concatenate(stats)[keep],
        quality=[quality[i] for i in keep],
        dx=[labels[ids[i]] for i in keep],
        images_per_s=rates[0] if rates else float("nan"),
    )


class Decider:
    """Decides saved outputs of a part of the ensemble the way core.screening.screener does."""

    def __init__(self, bundle_dir: Path, engine: str = "openvino", saved: tuple[str, ...] | None = None):
        self.bundle = load_bundle(bundle_dir)
        self.screener = Screener(self.bundle, EnsembleSettings(engine=engine))
        self.ens = self.screener.ensemble
        self.m = self.bundle.manifest
        # The views the saved outputs hold, in their order: the bundle's full ensemble may use fewer of them.
        self.saved = saved if saved is not None else self.ens.views

    def predictions(self, out: Outputs, members: tuple[int, ...], views: tuple[str, ...]) -> list:
        vi = view_index(self.saved, views)
        sel = out.logits[:, list(members)][:, :, vi]  # N x M' x V' x K
        ood = None
        if out.ood is not None:
            o = out.ood[:, list(members)][:, :, vi].transpose(1, 0, 2)
            ood = o[:, :, views.index("id")] if "id" in views else o.mean(axis=2)
        full = members == tuple(range(len(self.m.members))) and views == self.ens.views
        raw = RawOutputs(
            member_logits=sel.transpose(1, 0, 2, 3).mean(axis=2),
            cams=None,
            ood=ood,
            members=None if full else members,
            views=None if full else views,
        )
        return self.ens.to_predictions(raw)

    def outcomes(self, out: Outputs, preds: list, confidence: float) -> list[str]:
        t = self.m.gate.thresholds(confidence)
        codes = []
        for i, pred in enumerate(preds):
            stats = out.statistics[i] if np.all(np.isfinite(out.statistics[i])) and out.statistics.shape[1] else None
            o, intake = decide_image(self.m, pred, t, out.quality[i], stats)  # the app's gate path
            codes.append(outcome_code_of(o.decision, None if intake is None else intake.level))
        return codes

    def picture_flagged(self, out: Outputs, i: int) -> bool:
        stats = out.statistics[i] if out.statistics.shape[1] and np.all(np.isfinite(out.statistics[i])) else None
        return picture_flagged(self.m, stats)


def _view_subsets(views: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    """The fixed view subsets that are part of a full ensemble on `views` (all of them for 9 views)."""
    return {n: v for n, v in VIEW_SUBSETS.items() if set(v) <= set(views) and len(v) < len(views)}


def _figures(out: Outputs, preds: list, codes: list[str], full_codes: list[str], malignant: set[str]) -> dict:
    mal = np.array([d in malignant for d in out.dx])
    mel = np.array([d == "mel" for d in out.dx])
    p_mel = np.array([p.p_melanoma for p in preds])
    p_mal = np.array([p.p_malignant for p in preds])
    cleared = np.array([c == CLEARED for c in codes])
    return {
        "mel_auc": round(roc_auc(mel, p_mel), 4),
        "malignant_auc": round(roc_auc(mal, p_mal), 4),
        "malignant_cleared": int((cleared & mal).sum()),
        "melanoma_cleared": int((cleared & mel).sum()),
        "benign_cleared": int((cleared & ~mal).sum()),
        "n": len(codes),
        "n_malignant": int(mal.sum()),
        "n_benign": int((~mal).sum()),
        "agreement": round(float(np.mean([a == b for a, b in zip(codes, full_codes)])), 4),
    }


def greedy_members(d: Decider, out: Outputs, full_codes: list[str], confidence: float) -> list[int]:
    order: list[int] = []
    rest = list(range(len(d.m.members)))
    while rest:
        best = max(
            rest,
            key=lambda j: (
                np.mean(
                    [
                        a == b
                        for a, b in zip(
                            d.outcomes(out, d.predictions(out, tuple(sorted(order + [j])), d.ens.views), confidence),
                            full_codes,
                        )
                    ]
                ),
                -j,
            ),
        )
        order.append(best)
        rest.remove(best)
        if len(order) >= max(MEMBER_SIZES):
            order += rest
            break
    return order


def ms_per_pass(d: Decider, repeats: int = 5, batch: int = 36) -> float:
    """One member's pass on one view, measured here: a batch of `batch` views through every member (the
    engine the Decider opened), best of `repeats`, per pass."""
    import time

    x = np.random.default_rng(0).standard_normal((batch, 3, d.m.input_size, d.m.input_size)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up
        t = time.perf_counter()
        d.ens._run_views(x, want_cam=True)
        best = min(best, time.perf_counter() - t)
    return 1000.0 * best / (batch * len(d.m.members))


def frontier(d: Decider, out: Outputs, confidence: float) -> dict:
    all_m = tuple(range(len(d.m.members)))
    full_preds = d.predictions(out, all_m, d.ens.views)
    full_codes = d.outcomes(out, full_preds, confidence)
    order = greedy_members(d, out, full_codes, confidence)
    malignant = set(d.m.malignant_classes)
    per_pass = ms_per_pass(d)
    rows = []
    view_sets = {**_view_subsets(d.ens.views), len(d.ens.views): d.ens.views}
    for size in (*MEMBER_SIZES, len(all_m)):
        members = tuple(sorted(order[:size]))
        for nv, views in view_sets.items():
            preds = d.predictions(out, members, tuple(v for v in d.ens.views if v in views))
            codes = d.outcomes(out, preds, confidence)
            row = {"members": list(members), "views": nv, "passes": size * nv}
            row.update(_figures(out, preds, codes, full_codes, malignant))
            row["ms_per_image"] = round(size * nv * per_pass, 1)
            rows.append(row)
    return {"confidence": confidence, "order": order, "ms_per_pass": round(per_pass, 2), "rows": rows}


def _cascade_codes(d, out, margins: CascadeMargins, stop: StopMargins, p1, c1, full_codes) -> tuple[list, np.ndarray]:
    stopped = np.array([settled(margins, stop, p, out.quality[i], d.picture_flagged(out, i)) for i, p in enumerate(p1)])
    return [c1[i] if stopped[i] else full_codes[i] for i in range(len(p1))], stopped


def _down(x: float) -> float:
    return math.floor(x * 1e6) / 1e6  # six decimals, never past the gate's threshold


def _up(x: float) -> float:
    return math.ceil(x * 1e6) / 1e6


def review_intervals(pm, eligible, full_codes, t) -> tuple[tuple[float, float], ...]:
    """The recipe's review intervals: between consecutive stage-1 p(malignant)s of eligible images the full
    ensemble does not hold for review (the gate's low and high count as such points), each gap shrunk to
    [1.25 x its lower end, 0.8 x its upper end]; kept when it holds a validation image."""
    inside = eligible & (pm >= t.low) & (pm < t.high)
    bad = inside & np.array([c != Decision.REVIEW for c in full_codes])
    points = sorted([t.low, t.high, *pm[bad].tolist()])
    out = []
    for a, b in zip(points, points[1:]):
        a, b = _up(max(t.low, SUSPICIOUS_FACTOR * a)), _down(min(t.high, CLEAR_FACTOR * b))
        if a < b and ((pm >= a) & (pm < b) & inside).any():
            out.append((a, b))
    return tuple(out)


def fit(d: Decider, out: Outputs, order: list[int]) -> dict:
    gate = d.m.gate
    levels = sorted(gate.fitted)
    all_m = tuple(range(len(d.m.members)))
    full_preds = d.predictions(out, all_m, d.ens.views)
    full = {c: d.outcomes(out, full_preds, c) for c in levels}
    p_full = np.array([p.p_malignant for p in full_preds])
    full_bands = {c: [gate.fitted[c].band(float(p)) for p in p_full] for c in levels}
    max_spread = SPREAD_SHARE * gate.max_member_spread
    max_intake = INTAKE_SHARE * d.m.ood.threshold if d.m.ood is not None else None
    total = len(all_m) * len(d.ens.views)
    candidates: list[dict] = []
    for size in STAGE1_SIZES:
        members = tuple(sorted(order[:size]))
        for nv in STAGE1_VIEWS:
            if not set(VIEW_SUBSETS[nv]) <= set(d.ens.views):
                continue  # a stage 1 is a part of the full ensemble: its views are among the bundle's
            views = tuple(v for v in d.ens.views if v in VIEW_SUBSETS[nv])
            p1 = d.predictions(out, members, views)
            probe = CascadeMargins(members, views, max_spread, {}, max_intake)
            eligible = np.array(
                [
                    settled(probe, StopMargins(1.0, None), p, out.quality[i], d.picture_flagged(out, i))
                    for i, p in enumerate(p1)
                ]
            )  # every stop condition but p(malignant)'s
            pm = np.array([p.p_malignant for p in p1])
            stops: dict[float, StopMargins] = {}
            per_level: dict[str, dict] = {}
            for c in levels:
                t = gate.fitted[c]
                not_cleared = eligible & np.array([x != CLEARED for x in full[c]])
                not_suspicious = eligible & np.array([x != Decision.SUSPICIOUS for x in full[c]])
                clear = min(t.low, CLEAR_FACTOR * float(pm[not_cleared].min())) if not_cleared.any() else t.low
                sus = (
                    max(t.high, SUSPICIOUS_FACTOR * float(pm[not_suspicious].max())) if not_suspicious.any() else t.high
                )
                review = review_intervals(pm, eligible, full[c], t)
                stop = StopMargins(_down(clear), None if sus > 1.0 else _up(sus), review)
                stops[c] = stop
                c1 = d.outcomes(out, p1, c)
                codes, stopped = _cascade_codes(d, out, probe, stop, p1, c1, full[c])
                same_band = [
                    not s or a != Decision.REVIEW or t.band(float(p.p_malignant)) == fb
                    for s, a, p, fb in zip(stopped, codes, p1, full_bands[c])
                ]
                wrong_clear = int(sum(s and a == CLEARED and b != CLEARED for s, a, b in zip(stopped, codes, full[c])))
                agreement = float(np.mean([a == b for a, b in zip(codes, full[c])]))
                per_level[f"{c:g}"] = {
                    "stop_rate": round(float(stopped.mean()), 4),
                    "agreement": round(agreement, 4),
                    "cleared_by_stage1_but_not_by_full": wrong_clear,
                    "review_band_agreement": round(float(np.mean(same_band)), 4),
                    "expected_passes": round(size * nv + (1 - float(stopped.mean())) * (total - size * nv), 2),
                }
            ok = all(
                v["agreement"] >= 0.995 and v["cleared_by_stage1_but_not_by_full"] == 0 for v in per_level.values()
            )
            margins = CascadeMargins(members, views, max_spread, stops, max_intake, fitted_on="")
            candidates.append({"margins": margins.to_dict(), "levels": per_level, "meets_rule": ok})
    default = f"{gate.default_confidence:g}"
    passing = [c for c in candidates if c["meets_rule"]]
    chosen = (
        min(
            passing,
            key=lambda c: (
                c["levels"][default]["expected_passes"],
                len(c["margins"]["members"]) * len(c["margins"]["views"]),
            ),
        )
        if passing
        else None
    )
    return {"candidates": candidates, "chosen": chosen}


def score(d: Decider, out: Outputs, margins: CascadeMargins) -> dict:
    all_m = tuple(range(len(d.m.members)))
    full_preds = d.predictions(out, all_m, d.ens.views)
    p1 = d.predictions(out, margins.members, margins.views)
    malignant = set(d.m.malignant_classes)
    res = {}
    for c, stop in sorted(margins.levels.items()):
        full = d.outcomes(out, full_preds, c)
        c1 = d.outcomes(out, p1, c)
        codes, stopped = _cascade_codes(d, out, margins, stop, p1, c1, full)
        mal = [x in malignant for x in out.dx]
        res[f"{c:g}"] = {
            "n": len(codes),
            "stop_rate": round(float(stopped.mean()), 4),
            "agreement": round(float(np.mean([a == b for a, b in zip(codes, full)])), 4),
            "malignant_cleared_by_cascade_held_by_full": int(
                sum(m and a == CLEARED and b != CLEARED for m, a, b in zip(mal, codes, full))
            ),
            "any_cleared_by_cascade_not_by_full": int(sum(a == CLEARED and b != CLEARED for a, b in zip(codes, full))),
        }
    return res


def write_candidate(bundle_dir: Path, fit_json: Path, out: Path) -> None:
    """A copy of the bundle whose manifest carries the chosen margins (checked by core's strict reader); the
    old signature is left out: sign the copy with export.sign before anything loads it."""
    import shutil

    from core.inference.manifest import MANIFEST, Manifest

    chosen = json.loads(fit_json.read_text())["chosen"]
    if chosen is None:
        raise SystemExit("the fit chose no margins (no candidate met the rule): nothing to write")
    from core.decision.cascade import fingerprint

    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest.pop("cascade", None)
    manifest["cascade"] = {
        **chosen["margins"],
        "fitted_on": "HAM10000 val + ISIC 2017 val (configs/recipes/cascade-2026.12.07.yaml)",
        "fitted_for": fingerprint(Manifest.from_dict(manifest)),
    }
    Manifest.from_dict(manifest)  # refused here, not at the clinic, if out of range
    if out.exists():
        raise SystemExit(f"{out} exists: choose a new folder")
    shutil.copytree(bundle_dir, out, ignore=shutil.ignore_patterns("signature.json"))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out}; next: python -m export.sign {out} --key PRIVATE.pem")


def _table(front: dict) -> str:
    lines = [
        "| members | views | passes | mel AUC | p(malignant) AUC | malignancies cleared | melanomas cleared | "
        "benign cleared | agreement | ms/image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in front["rows"]:
        lines.append(
            f"| {len(r['members'])} | {r['views']} | {r['passes']} | {r['mel_auc']:.3f} | {r['malignant_auc']:.3f} | "
            f"{r['malignant_cleared']}/{r['n_malignant']} | {r['melanoma_cleared']} | "
            f"{r['benign_cleared']}/{r['n_benign']} | {100 * r['agreement']:.1f}% | {r['ms_per_image']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("frontier", "fit", "score", "write"))
    ap.add_argument("--outputs", default="../cache/cascade/outputs")
    ap.add_argument("--bundle", default="core/models/default")
    ap.add_argument("--save", help="write the JSON here")
    ap.add_argument("--margins", help="fit's JSON (score)")
    ap.add_argument("--order", help="member order from frontier's JSON (fit)")
    ap.add_argument("--out", help="write: the folder for the bundle copy with margins")
    a = ap.parse_args(argv)
    if a.command == "write":
        write_candidate(Path(a.bundle), Path(a.margins), Path(a.out))
        return 0
    folder = Path(a.outputs)
    d = Decider(Path(a.bundle), saved=saved_views(folder))
    if a.command == "frontier":
        out = load_outputs(folder, VALIDATION)
        result: dict = frontier(d, out, d.m.gate.default_confidence)
        result["images_per_s_full"] = round(out.images_per_s, 3)
        print(_table(result))
    elif a.command == "fit":
        out = load_outputs(folder, VALIDATION)
        order = json.loads(Path(a.order).read_text())["order"] if a.order else None
        if order is None:
            order = greedy_members(
                d,
                out,
                d.outcomes(
                    out, d.predictions(out, tuple(range(len(d.m.members))), d.ens.views), d.m.gate.default_confidence
                ),
                d.m.gate.default_confidence,
            )
        result = {"order": order, **fit(d, out, order), "n_validation": len(out.ids)}
        print(json.dumps(result["chosen"], indent=1))
    else:
        chosen = json.loads(Path(a.margins).read_text())["chosen"]
        margins = CascadeMargins.from_dict(chosen["margins"])
        result = {name: score(d, load_outputs(folder, (name,)), margins) for name in HELD_OUT}
        print(json.dumps(result, indent=1))
    if a.save:
        Path(a.save).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
