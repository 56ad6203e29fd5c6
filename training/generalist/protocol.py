"""The held-out-source protocol of a generalist recipe (configs/recipes/generalist-*.yaml), from cached
features and member logits: fold A (fitted on HAM10000 only, scored on ISIC 2017 train + val), the
in-domain check (HAM10000 val), fold B (a head fitted on ISIC 2017, scored on HAM10000 val), paired
bootstrap against the baseline, and rules 1-2 of the recipe (rule 3 needs the packaged bundle).

    python -m training.generalist.protocol configs/recipes/generalist-2026.12.07.yaml --cache C --out R
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from core.inference.calibration import softmax
from evalkit.metrics import paired_bootstrap_auc_delta, roc_auc

from .features import FeatureKey, cache_path, load_features
from .heads import LinearHead, balanced_class_weights, fit_softmax_head, grouped_folds
from .scores import MEL, aligned, fit_temperature, member_logits_for
from .sets import TEST_ONLY, ImageSet, load_set

log = logging.getLogger(__name__)
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SOURCE_CLASSES = {"ham10000": set(CLASSES), "isic2017": {"mel", "nv", "bkl"}}


class ProtocolError(ValueError):
    """The recipe asks for something the protocol forbids or cannot do."""


@dataclass(frozen=True)
class Labelled:
    x: np.ndarray | None  # features (N x D) or None
    logits: np.ndarray | None  # member logits M x N x K or None
    y: np.ndarray  # class index per image
    mask: np.ndarray  # N x K: the classes each image's source labels
    groups: list
    ids: tuple = ()

    def rows_of(self, ids) -> np.ndarray:
        where = {i: r for r, i in enumerate(self.ids)}
        return np.array([where[i] for i in ids if i in where], dtype=int)

    @property
    def melanoma(self) -> np.ndarray:
        return self.y == MEL


def _load(
    cache: Path, bundle: Path, names, key: FeatureKey | None, want_members: bool, override: dict | None = None
) -> Labelled:
    xs, ls, ys, ms, gs, ids_all = [], [], [], [], [], []
    for name in names:
        if name.partition("@")[0] in TEST_ONLY:
            raise ProtocolError(f"{name} tests the product and is never read for choice")
        s: ImageSet = load_set(name)
        sources = []
        if key is not None:
            f = load_features(cache, key, name)
            sources.append(f.image_ids)
        if want_members:
            logits, ids = member_logits_for(cache, bundle, s, override=override)
            sources.append(ids)
        rows, idx = aligned(s, *sources)
        k = 0
        if key is not None:
            xs.append(f.values[idx[k]])
            k += 1
        if want_members:
            ls.append(logits[:, idx[k]])
        ys.append(np.array([CLASSES.index(s.dx[r]) for r in rows]))
        allowed = np.array([c in SOURCE_CLASSES[s.source] for c in CLASSES])
        ms.append(np.tile(allowed, (len(rows), 1)))
        gs += [f"{name}:{s.lesion_ids[r]}" for r in rows]
        ids_all += [f"{name}:{s.image_ids[r]}" for r in rows]
    return Labelled(
        np.concatenate(xs) if xs else None,
        np.concatenate(ls, axis=1) if ls else None,
        np.concatenate(ys),
        np.concatenate(ms),
        gs,
        tuple(ids_all),
    )


def fit_head(train: Labelled, weight_decay: float) -> LinearHead:
    return fit_softmax_head(
        train.x, train.y, train.mask, len(CLASSES), weight_decay, balanced_class_weights(train.y, len(CLASSES))
    )


def choose_weight_decay(train: Labelled, grid, k: int = 5) -> tuple[float, dict]:
    """Lesion-grouped k-fold CV melanoma AUC on the fitting set only."""
    folds = grouped_folds(train.groups, k)
    scores = {}
    for wd in grid:
        out = np.zeros(len(train.y))
        for f in range(k):
            tr = folds != f
            part = Labelled(train.x[tr], None, train.y[tr], train.mask[tr], [g for g, t in zip(train.groups, tr) if t])
            out[folds == f] = softmax(fit_head(part, wd).logits(train.x[folds == f]))[:, MEL]
        scores[wd] = roc_auc(train.melanoma, out)
        log.info("weight decay %g: CV melanoma AUC %.4f", wd, scores[wd])
    return max(scores, key=scores.get), scores


def member_p(logits: np.ndarray, temps: np.ndarray) -> np.ndarray:
    return softmax(logits / temps[:, None, None])[..., MEL]  # M x N


def run(recipe: dict, cache: Path, bundle: Path, n_boot: int | None = None) -> dict:
    pr, rule = recipe["protocol"], recipe["rule"]
    boot = pr["bootstrap"]
    n_boot = boot["resamples"] if n_boot is None else n_boot
    base_members = recipe["baseline"]["members"]
    temp_set = _load(cache, bundle, pr["temperature_fit"], None, True)
    held = _load(cache, bundle, pr["held_out"], None, True)
    dom = _load(cache, bundle, pr["in_domain"], None, True)
    n_members = temp_set.logits.shape[0]
    temps = np.array([fit_temperature(temp_set.logits[m], temp_set.y) for m in range(n_members)], np.float32)
    p_held, p_dom = member_p(held.logits, temps), member_p(dom.logits, temps)
    base_held, base_dom = p_held[base_members].mean(0), p_dom[base_members].mean(0)

    def paired(y, cand, base, groups):
        d = paired_bootstrap_auc_delta(y, cand, base, groups, n_boot, boot["seed"], boot["level"])
        return {
            "auc": round(d.candidate, 4),
            "baseline": round(d.baseline, 4),
            "delta": round(d.delta, 4),
            "ci": [round(d.low, 4), round(d.high, 4)],
        }

    out = {
        "temperatures_ham10000_val": [round(float(t), 4) for t in temps],
        "held_out_images": int(len(held.y)),
        "held_out_melanomas": int(held.melanoma.sum()),
        "in_domain_images": int(len(dom.y)),
        "baseline": recipe["baseline"]["name"],
        "baseline_held_out_auc": round(roc_auc(held.melanoma, base_held), 4),
        "baseline_in_domain_auc": round(roc_auc(dom.melanoma, base_dom), 4),
        "candidates": {},
    }
    others = [m for m in range(n_members) if m not in base_members]
    if others:  # the multi-source members: in-sample on ISIC 2017, reported only
        out["members_not_in_baseline"] = {
            "members": others,
            "alone_isic2017_train_val_auc_in_sample": round(roc_auc(held.melanoma, p_held[others].mean(0)), 4),
            "all_members_isic2017_train_val_auc_in_sample": round(roc_auc(held.melanoma, p_held.mean(0)), 4),
            "alone_ham10000_val_auc": round(roc_auc(dom.melanoma, p_dom[others].mean(0)), 4),
            "all_members_ham10000_val_auc": round(roc_auc(dom.melanoma, p_dom.mean(0)), 4),
        }
    heads_done: dict = {}
    for cand in recipe["candidates"]:
        g = cand["generalist"]
        key = FeatureKey(g["backbone"], int(g["size"]), g["preprocessing"])
        needed = pr["head_fit"] + pr["held_out"] + pr["in_domain"] + pr["temperature_fit"] + pr["fold_b_fit"]
        if not all(cache_path(cache, key, n).exists() for n in set(needed)):
            out["candidates"][cand["name"]] = {"status": "not measured (features not extracted)"}
            continue
        if key.tag not in heads_done:
            train = _load(cache, bundle, pr["head_fit"], key, False)
            wd, cv = choose_weight_decay(train, pr["weight_decay_grid"])
            head = fit_head(train, wd)
            tset = _load(cache, bundle, pr["temperature_fit"], key, False)
            t_g = fit_temperature(head.logits(tset.x), tset.y)
            hx = _load(cache, bundle, pr["held_out"], key, True)  # the images the members read too
            dx = _load(cache, bundle, pr["in_domain"], key, True)
            pg_held = softmax(head.logits(hx.x) / t_g)[:, MEL]
            pg_dom = softmax(head.logits(dx.x) / t_g)[:, MEL]
            fb_train = _load(cache, bundle, pr["fold_b_fit"], key, False)
            fb_score = _load(cache, bundle, pr["fold_b_score"], key, False)
            fb_head = fit_head(fb_train, wd)
            heads_done[key.tag] = {
                "weight_decay": wd,
                "cv_auc": {str(k): round(v, 4) for k, v in cv.items()},
                "temperature": round(t_g, 4),
                "alone_held_out_auc": round(roc_auc(hx.melanoma, pg_held), 4),
                "alone_in_domain_auc": round(roc_auc(dx.melanoma, pg_dom), 4),
                "fold_b_auc": round(roc_auc(fb_score.melanoma, softmax(fb_head.logits(fb_score.x))[:, MEL]), 4),
                "_p": (pg_held, pg_dom, hx.y, dx.y),
            }
        info = heads_done[key.tag]
        pg_held, pg_dom, yh, yd = info["_p"]
        if not (np.array_equal(yh, held.y) and np.array_equal(yd, dom.y)):
            raise ProtocolError(f"{cand['name']}: features and member outputs cover different images")
        w = float(cand["weight"])
        c_held = (1 - w) * base_held + w * pg_held
        c_dom = (1 - w) * base_dom + w * pg_dom
        held_fig = paired(held.melanoma, c_held, base_held, held.groups)
        dom_fig = paired(dom.melanoma, c_dom, base_dom, dom.groups)
        passes = {
            "1_held_out_ci_low_above": held_fig["ci"][0] > rule["min_delta_low"],
            "2_in_domain_within_margin": dom_fig["delta"] >= -rule["in_domain_margin"],
        }
        out["candidates"][cand["name"]] = {
            "generalist": key.tag,
            "weight": w,
            "deployable": bool(cand["deployable"]),
            "head": {k: v for k, v in info.items() if not k.startswith("_")},
            "held_out": held_fig,
            "in_domain": dom_fig,
            "rules": passes,
            "status": "passes rules 1-2 (rule 3 after packaging)" if all(passes.values()) else "fails",
        }
        log.info("%s: %s", cand["name"], json.dumps(out["candidates"][cand["name"]]))
    for cand in recipe.get("member_preprocessing_candidates", []):
        out["candidates"][cand["name"]] = _preprocessing_candidate(
            cand, pr, rule, cache, bundle, held, dom, base_held, base_dom, paired
        )
    return out


def _preprocessing_candidate(cand, pr, rule, cache, bundle, held, dom, base_held, base_dom, paired) -> dict:
    """The baseline's members on other preprocessing (temperatures re-fitted on HAM10000 val under it)."""
    override = cand["preprocessing"]
    mem_paths = [
        member_cache_path(cache, bundle, n, override) for n in pr["temperature_fit"] + pr["held_out"] + pr["in_domain"]
    ]
    if not all(p.exists() for p in mem_paths):
        return {"status": "not measured (member outputs not computed)", "preprocessing": override}
    members = cand["members"]
    t_set = _load(cache, bundle, pr["temperature_fit"], None, True, override)
    c_held_l = _load(cache, bundle, pr["held_out"], None, True, override)
    c_dom_l = _load(cache, bundle, pr["in_domain"], None, True, override)
    # core's reader may refuse an image under one preprocessing and not another: compare on the common ones
    hc = [i for i in held.ids if i in set(c_held_l.ids)]
    dc = [i for i in dom.ids if i in set(c_dom_l.ids)]
    hb, hk, db, dk = held.rows_of(hc), c_held_l.rows_of(hc), dom.rows_of(dc), c_dom_l.rows_of(dc)
    temps = np.array([fit_temperature(t_set.logits[m], t_set.y) for m in members], np.float32)
    c_held = member_p(c_held_l.logits[members][:, hk], temps).mean(0)
    c_dom = member_p(c_dom_l.logits[members][:, dk], temps).mean(0)
    held_fig = paired(held.melanoma[hb], c_held, base_held[hb], [held.groups[r] for r in hb])
    dom_fig = paired(dom.melanoma[db], c_dom, base_dom[db], [dom.groups[r] for r in db])
    held_fig["images"], dom_fig["images"] = len(hb), len(db)
    passes = {
        "1_held_out_ci_low_above": held_fig["ci"][0] > rule["min_delta_low"],
        "2_in_domain_within_margin": dom_fig["delta"] >= -rule["in_domain_margin"],
    }
    result = {
        "preprocessing": override,
        "temperatures": [round(float(t), 4) for t in temps],
        "held_out": held_fig,
        "in_domain": dom_fig,
        "rules": passes,
        "status": "passes rules 1-2 (rule 3 after packaging)" if all(passes.values()) else "fails",
    }
    log.info("%s: %s", cand["name"], json.dumps(result))
    return result


def member_cache_path(cache: Path, bundle: Path, set_name: str, override: dict | None) -> Path:
    from core.inference.bundle import load_bundle

    from . import members as mem

    return mem.cache_path(cache, str(load_bundle(bundle, allow_unsigned=True).identity), "id", set_name, override)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--bundle", type=Path, default=Path("core/models/default"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = run(yaml.safe_load(args.recipe.read_text()), args.cache, args.bundle)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "protocol.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
