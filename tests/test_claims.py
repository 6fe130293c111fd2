from mirrorlab.analysis.claims import assess_claims, paired_difference, verdict


def rows(values, metric="m"):
    return [{"seed": s, metric: v} for s, v in enumerate(values)]


def test_paired_difference_pairs_by_seed():
    a = [{"seed": 3, "m": 5.0}, {"seed": 1, "m": 2.0}]
    b = [{"seed": 1, "m": 1.0}, {"seed": 3, "m": 1.0}, {"seed": 9, "m": 100.0}]
    d = paired_difference(a, b, "m")
    assert d["mean"] == 2.5 and d["n"] == 2


def test_verdicts():
    assert verdict([{"ci95": [0.1, 0.3]}, {"ci95": [0.2, 0.5]}]) == "supported"
    assert verdict([{"ci95": [0.1, 0.3]}, {"ci95": [-0.2, 0.5]}]) == "not supported"
    assert verdict([{"ci95": [0.1, 0.3]}, {"ci95": [-0.5, -0.2]}]) == "contradicted"


def test_assess_claims_uses_only_conditions_that_ran():
    metrics = ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")
    shared = [{"seed": s, **{m: 10.0 + s for m in metrics}} for s in range(5)]
    untrained = [{"seed": s, **{m: 1.0 + 0.5 * s for m in metrics}} for s in range(5)]
    claims = assess_claims({"shared": shared, "untrained": untrained})
    assert len(claims) == 1 and claims[0]["compared_with"] == "untrained"
    assert claims[0]["verdict"] == "supported"
    claims = assess_claims({"shared": untrained, "untrained": shared})
    assert claims[0]["verdict"] == "contradicted"
