import numpy as np

from mirrorlab.analysis.decoding import cross_condition_decoding


def _coded(rng, codes, labels, noise):
    return codes[labels] + noise * rng.standard_normal(labels.shape + (codes.shape[-1],))


def test_shared_action_code_generalises_across_modes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (100, 12))
    codes = rng.standard_normal((6, 20))
    res = cross_condition_decoding(_coded(rng, codes, labels, 1.0), _coded(rng, codes, labels, 1.0), labels,
                                   rng, n_shuffles=5)
    assert res["perform_to_observe"] > 0.9 and res["observe_to_perform"] > 0.9
    assert abs(res["chance"] - 1 / 6) < 0.04
    assert res["chance_q95"] < 0.3


def test_different_codes_decode_within_but_not_across_modes():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, (100, 12))
    perform = _coded(rng, rng.standard_normal((6, 20)), labels, 0.5)
    observe = _coded(rng, rng.standard_normal((6, 20)), labels, 0.5)
    res = cross_condition_decoding(perform, observe, labels, rng, n_shuffles=5)
    assert res["within_perform"] > 0.9 and res["within_observe"] > 0.9
    assert res["perform_to_observe"] < 0.45


def test_continuous_actions_use_r2_and_zscoring_removes_mode_offsets():
    rng = np.random.default_rng(2)
    actions = rng.standard_normal((80, 10, 3))
    w = rng.standard_normal((3, 16))
    perform = actions @ w + 0.3 * rng.standard_normal((80, 10, 16))
    observe = actions @ w + 5.0 + 0.3 * rng.standard_normal((80, 10, 16))  # same code, shifted
    raw = cross_condition_decoding(perform, observe, actions, rng, n_shuffles=3)
    fair = cross_condition_decoding(perform, observe, actions, rng, n_shuffles=3, zscore_each=True)
    assert raw["within_perform"] > 0.9
    assert raw["perform_to_observe"] < 0.5 < fair["perform_to_observe"]
    assert fair["chance"] < 0.05


def test_the_closed_form_read_outs_are_scikit_learns_ridge():
    from sklearn.linear_model import Ridge, RidgeClassifier

    from mirrorlab.analysis.decoding import _ridge, _targets

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 12)) + 2.0
    y = x @ rng.standard_normal((12, 3)) + rng.standard_normal((300, 3))
    w, b = _ridge(x, y, 1.0)
    ref = Ridge(alpha=1.0).fit(x, y)
    np.testing.assert_allclose(w, ref.coef_.T, atol=1e-8)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-8)
    labels = rng.integers(0, 5, 300)
    w, b = _ridge(x, _targets(labels, 5), 1.0)
    np.testing.assert_array_equal((x @ w + b).argmax(1), RidgeClassifier(alpha=1.0).fit(x, labels).predict(x))
