"""Control over the result: several styles, colour preservation, masks, the style loss
choice, coarse-to-fine. Each test fails when its feature is switched off or broken."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_image, targets_of
from tfstyle import ConfigError, RunOptions
from tfstyle.core import color, schedule
from tfstyle.options import MAX_STEPS
from tfstyle.errors import Interrupted
from tfstyle.core.losses import StyleLoss, layer_sums, mask_weights, style_distance, sums_moments
from tfstyle.local.inputs import stage_inputs

CONTENT = synthetic_image(1, 48, 64)
STYLE_A = synthetic_image(2, 40, 40)
STYLE_B = synthetic_image(3, 64, 48)
OPTIONS = RunOptions(size=64, steps=12, seed=0, stage_size=0)


def rel_err(got, want):
    return np.max(np.abs(np.asarray(got, np.float64) - want)) / max(np.max(np.abs(want)), 1e-12)


# ----- several styles


def test_blend_weights_one_zero_equal_the_single_style_run(stylizer):
    single_a = stylizer.stylize(CONTENT, STYLE_A, OPTIONS).image
    single_b = stylizer.stylize(CONTENT, STYLE_B, OPTIONS).image
    np.testing.assert_array_equal(
        stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS,
                         style_blend_weights=(1, 0)).image, single_a)
    np.testing.assert_array_equal(
        stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS,
                         style_blend_weights=(0, 5)).image, single_b)
    mixed = stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS,
                             style_blend_weights=(3, 7)).image
    for single in (single_a, single_b):
        assert np.abs(mixed.astype(int) - single).mean() > 1.0


def test_blended_target_is_the_weighted_mix_of_the_styles_moments():
    rng = np.random.default_rng(0)
    fa = [rng.uniform(0, 2, (1, 6, 5, 4)), rng.uniform(0, 2, (1, 3, 3, 7))]
    fb = [rng.uniform(0, 3, (1, 4, 8, 4)), rng.uniform(0, 1, (1, 2, 4, 7))]
    loss = StyleLoss([], ["x", "y"], 1.0, 1.0, 0.0)
    weights = (0.3, 0.7)
    as_tensors = [[tf.constant(f, tf.float32) for f in fs] for fs in (fa, fb)]
    targets = targets_of(loss, ([], as_tensors[0]), as_tensors, weights)
    for layer in range(2):
        scale = sum(w * np.mean(np.abs(f[layer])) for w, f in zip(weights, (fa, fb)))
        assert rel_err(targets.painting_scales[layer], scale) < 1e-5
        want_gram = want_mean = 0
        for w, f in zip(weights, (fa, fb)):
            flat = f[layer].reshape(-1, f[layer].shape[-1]) / scale
            want_gram = want_gram + w * flat.T @ flat / len(flat)
            want_mean = want_mean + w * flat.mean(0)
        assert rel_err(targets.style_grams[0][layer], want_gram) < 1e-5
        assert rel_err(targets.style_means[0][layer], want_mean) < 1e-5


def test_style_scale_applies_per_style(stylizer):
    half = stylizer.stylize(CONTENT, STYLE_B, OPTIONS, style_scale=0.5).image
    full = stylizer.stylize(CONTENT, STYLE_B, OPTIONS).image
    both = stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS, style_scale=(1.0, 0.5),
                            style_blend_weights=(0, 1)).image
    np.testing.assert_array_equal(both, half)
    assert np.abs(half.astype(int) - full).mean() > 1.0


@pytest.mark.parametrize("overrides, message", [
    (dict(style_blend_weights=(1, 2, 3)), "3 style blend weights for 2 style images"),
    (dict(style_scale=(1.0, 0.5, 2.0)), "3 style scales for 2 style images"),
    (dict(style_blend_weights=(0, 0)), "must not all be 0"),
    (dict(style_blend_weights=(1, -1)), "style_blend_weights must be ≥ 0"),
])
def test_bad_style_lists_are_refused_before_any_work(stylizer, overrides, message):
    with pytest.raises(ConfigError, match=message):
        stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS, **overrides)


# ----- colour preservation


def colour_moments(image):
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    return pixels.mean(0), np.cov(pixels, rowvar=False)


RED_STYLE = (synthetic_image(5, 48, 48).astype(np.float64) * [1.0, 0.25, 0.1]).astype(np.uint8)
COLOUR_OPTIONS = RunOptions(size=64, steps=40, seed=0, stage_size=0, style_weight=1e4)


def test_histogram_keeps_the_contents_colour_statistics(stylizer):
    want_mean, want_cov = colour_moments(CONTENT)
    results = {mode: stylizer.stylize(CONTENT, RED_STYLE, COLOUR_OPTIONS,
                                      preserve_colors=mode).image
               for mode in ("none", "histogram")}
    mean, cov = colour_moments(results["histogram"])
    assert np.abs(mean - want_mean).max() < 10, (mean, want_mean)
    assert np.linalg.norm(cov - want_cov) < 0.3 * np.linalg.norm(want_cov)
    # Without it the style's red takes over: the test can tell the two apart.
    mean, cov = colour_moments(results["none"])
    assert np.abs(mean - want_mean).max() > 30, (mean, want_mean)
    assert np.linalg.norm(cov - want_cov) > 0.5 * np.linalg.norm(want_cov)


def test_luminance_puts_the_contents_chroma_back(stylizer):
    want = color.rgb_to_ycbcr(CONTENT.astype(np.float32)).numpy()[..., 1:]
    results = {mode: stylizer.stylize(CONTENT, RED_STYLE, COLOUR_OPTIONS,
                                      preserve_colors=mode).image
               for mode in ("none", "luminance")}
    chroma = color.rgb_to_ycbcr(results["luminance"].astype(np.float32)).numpy()[..., 1:]
    # Equal up to rounding to uint8 and clipping where Y + chroma leaves [0, 255].
    assert np.median(np.abs(chroma - want)) < 1.0
    chroma = color.rgb_to_ycbcr(results["none"].astype(np.float32)).numpy()[..., 1:]
    assert np.median(np.abs(chroma - want)) > 5.0
    # The luminance itself is stylized, not the content's.
    y = color.rgb_to_ycbcr(results["luminance"].astype(np.float32)).numpy()[..., 0]
    content_y = color.rgb_to_ycbcr(CONTENT.astype(np.float32)).numpy()[..., 0]
    assert np.abs(y - content_y).mean() > 5.0


# ----- masks


def test_masked_moments_match_numpy():
    # As StyleLoss weighs a style layer's positions by a mask over the image.
    rng = np.random.default_rng(1)
    features = rng.uniform(0, 2, (1, 4, 6, 5))
    mask = rng.uniform(0, 1, (1, 8, 12, 1))
    weights = mask_weights(tf.constant(mask, tf.float32), features.shape[1:3])
    second, mean, area = sums_moments(layer_sums(tf.constant(features, tf.float32), weights))
    # Area resizing by an integer factor is the block mean.
    weights = mask.reshape(4, 2, 6, 2).mean((1, 3)).reshape(-1)
    flat = features.reshape(-1, 5)
    assert rel_err(area, weights.sum()) < 1e-5
    assert rel_err(second, (flat * weights[:, None]).T @ flat / weights.sum()) < 1e-5
    assert rel_err(mean, (flat * weights[:, None]).sum(0) / weights.sum()) < 1e-5


def test_mean_cov_distance_matches_numpy():
    rng = np.random.default_rng(2)
    f, g = rng.uniform(0, 2, (30, 6)), rng.uniform(0, 3, (40, 6))
    s_f, m_f = f.T @ f / 30, f.mean(0)
    s_g, m_g = g.T @ g / 40, g.mean(0)
    cov_f, cov_g = s_f - np.outer(m_f, m_f), s_g - np.outer(m_g, m_g)
    want = np.sum((cov_f - cov_g) ** 2) / (4 * 36) + np.sum((m_f - m_g) ** 2) / 6
    args = [tf.constant(a, tf.float32) for a in (s_f, m_f, s_g, m_g)]
    assert rel_err(style_distance(*args, kind="mean_cov"), want) < 1e-5
    assert rel_err(style_distance(*args, kind=tf.constant("mean_cov")), want) < 1e-5
    gram = np.sum((s_f - s_g) ** 2) / (4 * 36)
    assert rel_err(style_distance(*args, kind="gram"), gram) < 1e-5
    assert rel_err(style_distance(*args, kind=tf.constant("gram")), gram) < 1e-5


LEFT = np.zeros((48, 64), np.uint8)
LEFT[:, :32] = 255
MASK_OPTIONS = RunOptions(size=64, steps=30, seed=0, stage_size=0, style_weight=1e4)


def region_style_distance(stylizer, image, style, mask):
    """The style loss of ``image`` inside ``mask`` against ``style`` alone (resized as
    a run resizes it)."""
    options = MASK_OPTIONS
    loss = stylizer.make_loss(options)
    style = stage_inputs(stylizer.prepare(CONTENT, style, options), options.size, options,
                         stylizer.layers).styles[0]
    targets = stylizer.compute_targets(loss, tf.constant(CONTENT[None], tf.float32),
                                       tf.constant(style[None], tf.float32),
                                       masks=(tf.constant(mask[None, :, :, None] / 255.0,
                                                          tf.float32),))
    content_features, style_features = stylizer.features(tf.constant(image[None], tf.float32))
    return float(loss(tf.constant(image[None], tf.float32), content_features, style_features,
                      targets).style)


def test_content_mask_styles_inside_and_keeps_the_photo_outside(stylizer):
    masked = stylizer.stylize(CONTENT, STYLE_A, MASK_OPTIONS, content_mask=LEFT).image
    unmasked = stylizer.stylize(CONTENT, STYLE_A, MASK_OPTIONS).image
    inside_before = region_style_distance(stylizer, CONTENT, STYLE_A, LEFT)
    inside_after = region_style_distance(stylizer, masked, STYLE_A, LEFT)
    assert inside_after < inside_before / 3, (inside_before, inside_after)
    # Outside (away from the border: at 64 px the deep layers' receptive fields reach
    # across the whole image), the masked run stays much closer to the photo than the
    # unmasked one, and than its own inside.
    far, inside = (slice(None), slice(48, None)), (slice(None), slice(0, 32))
    drift_masked = np.abs(masked[far].astype(int) - CONTENT[far]).mean()
    drift_unmasked = np.abs(unmasked[far].astype(int) - CONTENT[far]).mean()
    assert drift_masked < 0.6 * drift_unmasked, (drift_masked, drift_unmasked)
    drift_inside = np.abs(masked[inside].astype(int) - CONTENT[inside]).mean()
    assert drift_inside > 1.8 * drift_masked, (drift_inside, drift_masked)


def test_two_styles_on_two_regions(stylizer):
    right = 255 - LEFT
    result = stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], MASK_OPTIONS,
                              style_masks=[LEFT, right]).image
    swapped = stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], MASK_OPTIONS,
                               style_masks=[right, LEFT]).image
    # Each region is closer to its own style than the swapped run's same region is.
    for style, mask in ((STYLE_A, LEFT), (STYLE_B, right)):
        own = region_style_distance(stylizer, result, style, mask)
        other = region_style_distance(stylizer, swapped, style, mask)
        assert own < 0.7 * other, (own, other)


def test_mask_of_another_shape_is_refused(stylizer):
    with pytest.raises(ConfigError, match="aspect ratio"):
        stylizer.stylize(CONTENT, STYLE_A, OPTIONS, content_mask=np.zeros((64, 64), np.uint8))
    with pytest.raises(ConfigError, match="1 style masks for 2 style images"):
        stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS, style_masks=[LEFT])
    with pytest.raises(ConfigError, match="blend weights"):
        stylizer.stylize(CONTENT, [STYLE_A, STYLE_B], OPTIONS, style_masks=[LEFT, LEFT],
                         style_blend_weights=(1, 1))


# ----- the style loss choice


def test_style_loss_choice_changes_the_objective(stylizer):
    options = RunOptions(size=64, steps=20, seed=0, stage_size=0, init="noise",
                         content_weight=0.0, tv_weight=0.0)
    gram = stylizer.stylize(CONTENT, STYLE_A, options, style_loss="gram")
    mean_cov = stylizer.stylize(CONTENT, STYLE_A, options, style_loss="mean_cov")
    start = stylizer.stylize(CONTENT, STYLE_A, options, style_loss="mean_cov", steps=0)
    assert mean_cov.losses["style"] < start.losses["style"] / 3
    assert np.abs(gram.image.astype(int) - mean_cov.image).mean() > 1.0


# ----- coarse-to-fine


@pytest.mark.parametrize("options, plan", [
    (RunOptions(), [(128, 138), (256, 68), (512, 34)]),  # the default run
    (RunOptions(size=512, steps=300, stage_size=256), [(256, 200), (512, 100)]),
    (RunOptions(size=1024, steps=700, stage_size=256), [(256, 400), (512, 200), (1024, 100)]),
    (RunOptions(size=510, steps=300, stage_size=256), [(510, 300)]),
    (RunOptions(size=511, steps=300, stage_size=256), [(256, 200), (511, 100)]),  # 255.5 -> 256
    (RunOptions(size=512, steps=300, stage_size=0), [(512, 300)]),
    (RunOptions(size=800, steps=10, stage_size=200, stage_factor=1.5),
     [(237, 7), (356, 2), (533, 1), (800, 0)]),
    (RunOptions(size=512, steps=1, stage_size=256, stage_steps=(5, 7)), [(256, 5), (512, 7)]),
])
def test_stage_plan(options, plan):
    # The literals are worked out by hand; the reference (below) must agree with them too,
    # so that the property test checks against a rule that is itself checked.
    got = options.validate().stages()
    assert got == plan
    if options.stage_steps is None:
        assert reference_plan(options.size, options.steps, options.stage_size,
                              options.stage_factor) == plan
        assert sum(n for _, n in got) == options.steps
    else:
        assert [n for _, n in got] == list(options.stage_steps)


def reference_plan(target, steps, stage_size, factor):
    """tfstyle/core/schedule.py's rule, in plain Python: [(size, steps), ...], or None for a
    plan of more than 16 stages.

    The sizes round(target / factor^k), k = 1, 2, ..., while still ≥ stage_size (none
    for stage_size 0), coarsest first, then target; each stage gets half the steps of
    the next coarser one (shares 2^(n-1), ..., 2, 1), floored, the remainder going to
    the first stage. The factor is taken as a float32, as the exported signature
    declares it and the library passes it.
    """
    factor = float(np.float32(factor))
    coarser = []
    while stage_size > 0 and len(coarser) <= 16:
        size = round(target / factor ** (len(coarser) + 1))
        if size < stage_size:
            break
        coarser.append(size)
    sizes = coarser[::-1] + [target]
    if len(sizes) > 16:
        return None
    shares = [2 ** (len(sizes) - 1 - i) for i in range(len(sizes))]
    split = [steps * share // sum(shares) for share in shares]
    split[0] += steps - sum(split)
    return list(zip(sizes, split))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(target=st.integers(1, 16384), steps=st.integers(0, MAX_STEPS),
       stage_size=st.one_of(st.just(0), st.integers(1, 16384), st.integers(1, 512)),
       factor=st.one_of(st.sampled_from([1.5, 2.0, 2 ** 0.5, 3.0]),
                        st.floats(1.01, 16.0, allow_nan=False)))
def test_stage_plan_follows_the_documented_rule(target, steps, stage_size, factor):
    options = RunOptions(size=target, steps=steps, stage_size=stage_size,
                         stage_factor=factor)
    want = reference_plan(target, steps, stage_size, factor)
    if want is None:
        with pytest.raises(ConfigError, match="make more than 16 stages: raise one of them"):
            options.stages()
        return
    assert options.stages() == want
    # The exported model traces the same function with tensor inputs.
    sizes, split = traced_stage_plan(tf.constant(target), tf.constant(steps),
                                     tf.constant(stage_size), tf.constant(factor, tf.float32))
    assert list(zip(sizes.numpy().tolist(), split.numpy().tolist())) == want


traced_stage_plan = tf.function(schedule.stage_plan, input_signature=[
    tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
    tf.TensorSpec([], tf.float32)])


def test_stage_steps_of_the_wrong_length_are_refused():
    with pytest.raises(ConfigError, match="3 stage_steps for 2 stages"):
        RunOptions(size=512, stage_size=256, stage_steps=(1, 2, 3)).validate()


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_coarse_to_fine_runs_each_stage_and_ends_at_full_size(stylizer, optimizer):
    options = RunOptions(size=96, steps=12, seed=0, stage_size=48, optimizer=optimizer)
    seen = []
    result = stylizer.stylize(CONTENT, STYLE_A, options, callback_every=2,
                              callback=lambda p: seen.append((p.step, p.stage, p.size,
                                                              p.image().shape)))
    assert result.image.shape == (72, 96, 3) and result.steps == 12
    assert (8, 1, 48, (36, 48, 3)) in seen and (12, 2, 96, (72, 96, 3)) in seen
    single = stylizer.stylize(CONTENT, STYLE_A, options, stage_size=0).image
    assert np.abs(single.astype(int) - result.image).mean() > 1.0


def test_adam_state_is_carried_into_the_next_stage():
    from tfstyle.core.optimizers import Adam
    adam = Adam()
    image = tf.fill((1, 4, 6, 3), 100.0)
    _, state = adam.update(image, tf.ones_like(image), 0.0, adam.init(image))
    m, v, t = adam.resize_state(state, tf.zeros((1, 8, 12, 3)))
    assert m.shape == (1, 8, 12, 3) and float(t) == 1.0
    np.testing.assert_allclose(m.numpy(), 0.1, rtol=1e-6)  # (1 − β1) · grad, resized
    np.testing.assert_allclose(v.numpy(), 0.001, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_resume_inside_a_later_stage_reaches_the_uninterrupted_result(stylizer, optimizer):
    options = RunOptions(size=96, steps=24, seed=0, stage_size=48, optimizer=optimizer)
    whole = stylizer.stylize(CONTENT, STYLE_A, options).image
    calls = [0]

    def stop_in_stage_two():
        calls[0] += 1
        return calls[0] >= 20  # polled once per chunk; stage 1 ends at step 16

    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE_A, options, should_stop=stop_in_stage_two,
                         callback_every=1)
    checkpoint = info.value.checkpoint
    assert 16 < checkpoint["step"] < 24 and checkpoint["image"].shape == (1, 72, 96, 3)
    resumed = stylizer.stylize(CONTENT, STYLE_A, options, resume=checkpoint)
    np.testing.assert_array_equal(resumed.image, whole)


@pytest.mark.parametrize("stop_at", [5, 20])  # chunks polled: inside stage 1, stage 2
def test_a_resumed_stage_starts_from_the_checkpoint_and_builds_no_start(
        stylizer, monkeypatch, stop_at):
    import tfstyle.core.stage_inputs
    from tfstyle.core import stages
    options = RunOptions(size=96, steps=24, seed=0, stage_size=48)  # the blend start
    whole = stylizer.stylize(CONTENT, STYLE_A, options).image
    calls = [0]

    def stop():
        calls[0] += 1
        return calls[0] >= stop_at

    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE_A, options, should_stop=stop, callback_every=1)

    def no_start(*args, **kwargs):
        raise AssertionError("a resumed run built a start image")

    monkeypatch.setattr(tfstyle.core.stage_inputs, "painting_start", no_start)
    monkeypatch.setattr(stages, "start_image", no_start)
    resumed = stylizer.stylize(CONTENT, STYLE_A, options, resume=info.value.checkpoint)
    np.testing.assert_array_equal(resumed.image, whole)


# ----- style strength


@pytest.mark.parametrize("strength", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_strength_weights_follow_the_documented_curve(strength):
    from tfstyle.core.losses import strength_weights
    from tfstyle.options import DEFAULT_STYLE_STRENGTH as s0, STRENGTH_REACH as reach
    alpha, beta, gamma = strength_weights(2.0, 3e3, 50.0, strength, s0, reach)
    # ε from its definition: the ratio β/α at s = 1 is ``reach`` times the one at s0.
    eps = (1 - s0) / (s0 * np.sqrt(reach) - 1)
    keep = (1 + eps - strength) / (1 + eps - s0)
    want = (2.0 * keep ** 2, 3e3 * (strength / s0) ** 2, 50.0 * (strength / s0) ** 2)
    np.testing.assert_allclose((alpha, beta, gamma), want, rtol=1e-12)
    # The same function on float32 tensors, as the exported graph calls it.
    tensors = strength_weights(tf.constant(2.0), tf.constant(3e3), tf.constant(50.0),
                               tf.constant(strength, tf.float32), s0, reach)
    np.testing.assert_allclose([float(t) for t in tensors], want, rtol=1e-6)


@pytest.mark.parametrize("s0, reach", [(0.5, 9.0), (0.5, 100.0), (0.3, 20.0), (0.8, 2.0)])
def test_the_knob_is_monotonic_in_its_weights(s0, reach):
    """α never rises and β never falls along the knob, the ratio β/α rises strictly from
    0, equals the given weights' at s0 and ``reach`` times theirs at 1."""
    from tfstyle.core.losses import strength_weights
    knob = np.linspace(0.0, 1.0, 201)
    alpha, beta, gamma = (np.array(w, np.float64) for w in
                          zip(*(strength_weights(2.0, 3e3, 50.0, s, s0, reach) for s in knob)))
    assert np.all(np.diff(alpha) <= 0) and np.all(np.diff(beta) >= 0)
    assert np.all(alpha > 0), "the content term is never switched off"
    np.testing.assert_allclose(gamma / 50.0, beta / 3e3, rtol=1e-12)
    ratio = (beta / alpha) / (3e3 / 2.0)
    assert ratio[0] == 0.0 and np.all(np.diff(ratio) > 0)
    np.testing.assert_allclose(ratio[-1], reach, rtol=1e-12)
    at_default = strength_weights(2.0, 3e3, 50.0, s0, s0, reach)
    np.testing.assert_allclose(at_default, (2.0, 3e3, 50.0), rtol=1e-12)


def test_a_reach_the_knob_cannot_make_is_refused():
    from tfstyle.core.losses import strength_weights
    with pytest.raises(ValueError, match="reach"):
        strength_weights(1.0, 1.0, 1.0, 0.5, 0.5, 4.0)  # the ratio at 1 is already 4


def test_default_strength_keeps_the_given_weights():
    options = RunOptions(content_weight=2.0, style_weight=7.0, tv_weight=3.0)
    assert options.loss_weights() == pytest.approx((2.0, 7.0, 3.0), rel=1e-12)


def test_strength_zero_returns_the_photo(stylizer):
    options = dataclasses_replace(OPTIONS, style_strength=0.0)
    result = stylizer.stylize(CONTENT, STYLE_A, options)
    content = stylizer.stylize(CONTENT, STYLE_A, options, steps=0).image
    np.testing.assert_array_equal(result.image, content)
    assert result.losses["style"] == 0.0 and result.losses["tv"] == 0.0


def test_more_strength_moves_the_result_from_the_photo_to_the_painting(stylizer):
    distances = []
    # 60 steps: since the style term compares on the photo's scale, at 30 the 0.7
    # run's style distance was 1 % above the 0.5 run's, still short of its optimum.
    for strength in (0.3, 0.5, 0.7):
        options = dataclasses_replace(OPTIONS, steps=60, style_strength=strength)
        result = stylizer.stylize(CONTENT, STYLE_A, options)
        # Measure every result with the same (default-strength) loss.
        terms = stylizer.stylize(CONTENT, STYLE_A, OPTIONS, init=_png(result.image),
                                 steps=0).losses
        distances.append((terms["content"], terms["style"]))
    (c1, s1), (c2, s2), (c3, s3) = distances
    assert c1 < c2 < c3, distances
    assert s1 > s2 > s3, distances


def test_above_the_default_strength_only_the_full_size_stage_moves(stylizer):
    # A two-stage run whose full-size stage takes no step is its coarse stage, upsampled.
    # Above the default the coarse stage keeps the default's balance, so at 0.9 that is
    # the 0.5 run's picture (the blend start's share is the same above 0.5); below the
    # default it follows the knob; with steps at full size, 0.9 moves on.
    def run(strength, steps):
        options = dataclasses_replace(OPTIONS, stage_size=32, stage_steps=steps,
                                      style_strength=strength)
        assert len(options.stages()) == 2
        return stylizer.stylize(CONTENT, STYLE_A, options).image

    coarse = run(0.5, (8, 0))
    np.testing.assert_array_equal(run(0.9, (8, 0)), coarse)
    assert np.abs(run(0.3, (8, 0)).astype(int) - coarse).mean() > 0.5
    assert np.abs(run(0.9, (8, 8)).astype(int) - run(0.5, (8, 8))).mean() > 0.2


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_zero_one_is_refused(strength):
    with pytest.raises(ConfigError, match="style_strength"):
        RunOptions(style_strength=strength).validate()


def test_strength_zero_without_content_weight_has_nothing_to_optimise():
    with pytest.raises(ConfigError, match="all loss weights are 0"):
        RunOptions(style_strength=0.0, content_weight=0.0).validate()


def test_strength_one_keeps_the_photo_in_the_loss():
    alpha, beta, _ = RunOptions(style_strength=1.0).loss_weights()
    assert 0 < alpha < RunOptions().content_weight and beta > RunOptions().style_weight


def dataclasses_replace(options, **changes):
    import dataclasses
    return dataclasses.replace(options, **changes)


def _png(pixels):
    """An init image as a file, as ``RunOptions.init`` takes it."""
    import tempfile
    from PIL import Image
    path = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
    Image.fromarray(pixels).save(path)
    return path
