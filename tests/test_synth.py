"""Tests of the crowd-scene synthesizer on acoustic facts, determinism and its contract."""

from __future__ import annotations

import argparse
import json

import librosa
import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf

from crowdnb.clips import CLIP_COLUMNS, read_clips
from crowdnb.errors import ParameterError
from crowdnb.files import sha256_file
from crowdnb.synth import (
    LICENCE,
    expected_blocks,
    make_params,
    plan_clips,
    register_cli,
    render_clip,
    synthesize,
)
from crowdnb.synth import applause as A
from crowdnb.synth import events as E
from crowdnb.synth import scenes as S
from crowdnb.synth import venue as V
from crowdnb.synth import voices as VO
from crowdnb.synth.dsp import ctrl_length
from crowdnb.synth.presets import parse_override

SR = 44100


def centroid_hz(y: np.ndarray, sr: int = SR) -> float:
    f, p = scipy.signal.welch(y, sr, nperseg=4096)
    return float(np.sum(f * p) / np.sum(p))


def third_octave_db(y: np.ndarray, freqs: np.ndarray, sr: int = SR) -> np.ndarray:
    f, p = scipy.signal.welch(y, sr, nperseg=8192)
    return np.array([10 * np.log10(p[(f >= fc / 2 ** (1 / 6)) & (f < fc * 2 ** (1 / 6))].mean())
                     for fc in freqs])


def median_f0(y: np.ndarray, sr: int = SR, *, fmin: float = 60.0, fmax: float = 1200.0) -> float:
    """Median f0 of the loud frames, by normalised autocorrelation (first peak near the top)."""
    frame, hop = 4096, 2048
    lo, hi = int(sr / fmax), int(sr / fmin)
    f0s, levels = [], []
    for a in range(0, len(y) - frame, hop):
        x = y[a:a + frame] * np.hanning(frame)
        r = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * frame)) ** 2)[:frame]
        if r[0] <= 0:
            continue
        r = r / r[0]
        seg = r[lo:hi]
        peaks, _ = scipy.signal.find_peaks(seg)
        if len(peaks) == 0:
            continue
        best = seg[peaks].max()
        lag = lo + peaks[np.argmax(seg[peaks] > 0.85 * best)]
        f0s.append(sr / lag)
        levels.append(np.sum(x * x))
    f0s, levels = np.array(f0s), np.array(levels)
    return float(np.median(f0s[levels > 0.2 * levels.max()]))


MALE = VO.Speaker(sex="male", f0_hz=120.0, formant_scale=1.0, jitter=0.006, shimmer=0.04,
                  breathiness=0.05)


# ---------------------------------------------------------------------------
# parameters and presets


def test_unknown_parameters_are_named():
    with pytest.raises(ParameterError, match="bogus_knob.*crowd_sise|crowd_sise.*bogus_knob"):
        make_params("paper", bogus_knob=1, crowd_sise=10)
    with pytest.raises(ParameterError, match="bogus"):
        synthesize("/nonexistent-never-written", preset="smoke", bogus=1)


@pytest.mark.parametrize("name,value", [("class_overlap", 1.5), ("t60_s", 0.0),
                                        ("joy_durations_s", (5.0, -1.0)), ("goals", -1),
                                        ("subtype", "MP3"), ("buildup_share", (0.9, 0.5))])
def test_bad_values_name_the_parameter(name, value):
    with pytest.raises(ParameterError, match=name):
        make_params("smoke", **{name: value})


def test_unknown_preset_and_study():
    with pytest.raises(ParameterError, match="preset"):
        make_params("huge")
    with pytest.raises(ParameterError, match="study"):
        synthesize("/nonexistent-never-written", preset="smoke", study="tennis")


def test_parse_override_follows_field_types():
    assert parse_override("joy_durations_s=5,6.5") == ("joy_durations_s", (5.0, 6.5))
    assert parse_override("crowd_size=none") == ("crowd_size", None)
    assert parse_override("goals=3") == ("goals", 3)
    assert parse_override("class_overlap=0.6") == ("class_overlap", 0.6)
    with pytest.raises(ParameterError, match="nonsense"):
        parse_override("nonsense=1")
    with pytest.raises(ParameterError, match="goals"):
        parse_override("goals=many")


def test_diverse_preset_is_the_papers_audio_in_three_times_the_events():
    paper, diverse = make_params("paper"), make_params("diverse")
    for label in ("joy", "anger", "neutral"):
        assert len(diverse.durations(label)) == 3 * len(paper.durations(label))
        assert sum(diverse.durations(label)) == pytest.approx(sum(paper.durations(label)), abs=0.01)
    events = {t["event_id"] for t in plan_clips(diverse, seed=0, study="emotions")}
    assert len(events) == 54


def test_paper_preset_gives_the_papers_balanced_block_count():
    params = make_params("paper")
    counts = {label: len(params.durations(label)) for label in ("joy", "anger", "neutral")}
    assert counts == {"joy": 9, "anger": 6, "neutral": 3}
    blocks = {label: sum(expected_blocks(d) for d in params.durations(label))
              for label in counts}
    assert min(blocks.values()) == 226  # 678 after balancing, 226 per class
    assert all(226 <= b <= 240 for b in blocks.values())
    football = plan_clips(params, seed=0, study="football")
    labels = pd.Series([t["label"] for t in football]).value_counts().to_dict()
    assert labels == {"goal": 8, "no_goal": 9}
    assert {t["event_id"] for t in football} == {"synth-match"}
    for t in football:
        assert 15.0 <= t["duration_s"] <= 25.0
        assert 0.65 * t["duration_s"] - 1e-6 <= t["buildup_s"] <= 0.85 * t["duration_s"] + 1e-6


# ---------------------------------------------------------------------------
# voices


def test_effort_raises_f0_and_flattens_the_spectral_tilt():
    rng = np.random.default_rng(1)
    soft, loud = [], []
    for effort, out in ((0.0, soft), (3.0, loud)):
        f0 = 120.0 * 2 ** (VO._f0_rise(effort) / 12)
        for vowel in ("aa", "eh", "ow"):
            out.append(VO.phonate(rng, MALE, sr=SR, duration_s=0.8, f0_knots=[(0, f0), (0.8, f0)],
                                  vowel_knots=[(0, vowel)], effort=effort, wander_cents=0))
    f_soft = np.median([median_f0(y) for y in soft])
    f_loud = np.median([median_f0(y) for y in loud])
    assert f_soft == pytest.approx(120.0, rel=0.06)
    assert 12 * np.log2(f_loud / f_soft) > 9.0  # shouting: about an octave up
    assert 220.0 < f_loud < 400.0

    def tilt(ys):
        f, p = scipy.signal.welch(np.concatenate(ys), SR, nperseg=4096)
        return 10 * np.log10(p[(f > 2000) & (f < 5000)].sum() / p[(f > 100) & (f < 1000)].sum())

    assert tilt(loud) - tilt(soft) > 6.0  # dB more high-frequency energy when shouting


@pytest.mark.parametrize("effort", [0, 3])
def test_long_term_speech_spectrum_follows_ansi_s35(effort):
    rng = np.random.default_rng(7)
    y = np.concatenate([VO.speech_phrase(rng, VO.draw_speaker(rng), sr=SR, effort=effort)
                        for _ in range(25)])
    bands = VO._ANSI_FREQS[:-1]  # 160 Hz-6.3 kHz
    ours = third_octave_db(y, bands)
    ansi = VO._ANSI_LEVELS[effort][:-1]
    diff = (ours - ours.max()) - (ansi - ansi.max())
    assert np.sqrt(np.mean((diff - diff.mean()) ** 2)) < 4.0  # dB RMS over the bands


def test_booing_is_a_low_u_lower_than_cheering():
    rng = np.random.default_rng(3)
    speakers = [VO.draw_speaker(rng, female_share=0.3) for _ in range(8)]
    boos = [VO.boo(rng, s, sr=SR, effort=2.0) for s in speakers]
    cheers = [VO.cheer(rng, s, sr=SR, effort=3.0) for s in speakers]
    c_boo = np.mean([centroid_hz(y) for y in boos])
    c_cheer = np.mean([centroid_hz(y) for y in cheers])
    assert c_boo < 0.7 * c_cheer
    male_boos = [y for y, s in zip(boos, speakers) if s.sex == "male"]
    f0s = [median_f0(y) for y in male_boos]
    assert all(85.0 <= f <= 200.0 for f in f0s), f0s
    # the boo's energy sits below 1 kHz (F1 ~550 Hz, F2 ~1 kHz, shouted)
    f, p = scipy.signal.welch(np.concatenate(boos), SR, nperseg=4096)
    assert p[f < 1000].sum() / p.sum() > 0.8


def test_laughter_is_breathy_syllables_at_four_to_six_per_second():
    rng = np.random.default_rng(5)
    y = VO.laugh(rng, MALE, sr=SR)
    env = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    peaks, _ = scipy.signal.find_peaks(env, height=0.3 * env.max(), distance=int(0.12 * SR / 256))
    rate = (len(peaks) - 1) / ((peaks[-1] - peaks[0]) * 256 / SR)
    assert 3.8 <= rate <= 5.8


# ---------------------------------------------------------------------------
# applause


def onset_rate(y: np.ndarray, *, min_gap_s: float) -> float:
    env = np.abs(scipy.signal.hilbert(y))
    env = scipy.signal.sosfiltfilt(scipy.signal.butter(2, 60, fs=SR, output="sos"), env)
    peaks, _ = scipy.signal.find_peaks(env, height=0.25 * np.percentile(env, 99.5),
                                       distance=int(min_gap_s * SR))
    t = peaks / SR
    return (len(t) - 1) / (t[-1] - t[0])


def test_single_clapper_claps_at_the_rate_asked():
    rng = np.random.default_rng(0)
    n = 12 * SR
    m = ctrl_length(n, SR)
    for rate in (3.5, 5.0):
        y = A.applause(rng, n, SR, n_clappers=1, activity=np.ones(m), distances_m=np.ones(1),
                       rate_hz=rate, rate_sd_hz=0.0)
        assert onset_rate(y, min_gap_s=0.08) == pytest.approx(rate, rel=0.06)


def test_synchronised_applause_claps_at_about_half_the_free_rate():
    rng = np.random.default_rng(1)
    n = 12 * SR
    m = ctrl_length(n, SR)
    y = A.applause(rng, n, SR, n_clappers=25, activity=np.ones(m),
                   distances_m=rng.uniform(1, 5, 25), rate_hz=4.4, sync=np.ones(m))
    # everyone on the common beat at half the free rate (Neda et al. 2000)
    assert onset_rate(y, min_gap_s=0.25) == pytest.approx(2.2, rel=0.1)


def test_clap_spectra_peak_between_one_and_two_and_a_half_khz():
    rng = np.random.default_rng(2)
    for centre in (900.0, 1500.0, 2400.0):
        bank = A.clap_kernels(rng, SR, center_hz=centre, q=2.5, count=8)
        spec = np.mean(np.abs(np.fft.rfft(bank, 8192, axis=1)) ** 2, axis=0)
        f = np.fft.rfftfreq(8192, 1 / SR)
        peak = f[np.argmax(scipy.signal.savgol_filter(spec, 31, 2))]
        assert peak == pytest.approx(centre, rel=0.2)


# ---------------------------------------------------------------------------
# venue


@pytest.mark.parametrize("kind,t60", [("hall", 1.5), ("arena", 3.0), ("stadium", 1.2),
                                      ("room", 0.7)])
def test_impulse_response_has_the_reverberation_time_asked(kind, t60):
    rng = np.random.default_rng(11)
    venue = V.draw_venue(rng, kind, t60_s=t60)
    ir = V.impulse_response(venue, SR, rng)
    t30 = V.schroeder_t60(ir, SR, band_hz=1000.0, db_range=(-5.0, -35.0))
    t20 = V.schroeder_t60(ir, SR, band_hz=500.0, db_range=(-5.0, -25.0))
    assert t30 == pytest.approx(t60, rel=0.15)
    assert t20 == pytest.approx(t60, rel=0.15)
    # air absorption: high frequencies die sooner
    assert V.schroeder_t60(ir, SR, band_hz=4000.0) < 0.9 * t30


def test_schroeder_measures_a_known_exponential_decay():
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.908 * t / 1.8)
    assert V.schroeder_t60(ir, SR, band_hz=None) == pytest.approx(1.8, rel=0.05)


def test_background_spectrum_is_shared_within_an_event_and_differs_between_events():
    bands = np.array([63, 125, 250, 500, 1000, 2000, 4000, 8000], float)

    def spectrum(event_seed, clip_seed):
        shape = E.draw_background_shape(np.random.default_rng(event_seed), indoor=True)
        y = E.room_tone(np.random.default_rng(clip_seed), 3 * SR, SR, shape, level_db=50.0)
        return third_octave_db(y, bands)

    a1, a2 = spectrum(1, 100), spectrum(1, 200)
    b1 = spectrum(2, 100)
    same = np.sqrt(np.mean((a1 - a2) ** 2))
    other = np.sqrt(np.mean((a1 - b1) ** 2))
    assert same < 1.0  # dB: two clips of one event
    assert other > 2.0  # dB: two events


def test_air_absorption_grows_with_distance():
    assert V.air_absorption_cutoff_hz(2.0) == 20000.0
    assert V.air_absorption_cutoff_hz(50.0) > V.air_absorption_cutoff_hz(150.0)
    # about 0.1 dB/m at 8 kHz: 10 dB at 100 m
    fc = V.air_absorption_cutoff_hz(100.0)
    assert 10 * np.log10(1 + (8000.0 / fc) ** 2) == pytest.approx(10.0, abs=0.1)


# ---------------------------------------------------------------------------
# scenes


def test_goal_endings_are_louder_and_brighter_than_no_goal_endings():
    params = make_params("smoke", event_variability=0.0)
    rng = np.random.default_rng(21)
    event = S.make_match("m", rng, params=params, sr=SR)
    ends = {"goal": [], "no_goal": []}
    for outcome in ends:
        for k in range(3):
            y, _ = S.render_action_clip(event, 8.0, outcome=outcome, buildup_s=5.0,
                                        params=params, rng=np.random.default_rng(100 + k), sr=SR)
            tail = y[int(5.8 * SR):]
            ends[outcome].append((20 * np.log10(np.sqrt(np.mean(tail ** 2))), centroid_hz(tail)))
    goal, miss = np.array(ends["goal"]), np.array(ends["no_goal"])
    assert goal[:, 0].mean() - miss[:, 0].mean() > 3.0  # dB
    assert goal[:, 1].mean() > 1.1 * miss[:, 1].mean()


def test_build_up_is_shared_by_both_outcomes():
    params = make_params("smoke", event_variability=0.0)
    event = S.make_match("m", np.random.default_rng(4), params=params, sr=SR)
    levels = {}
    for outcome in ("goal", "no_goal"):
        y, _ = S.render_action_clip(event, 10.0, outcome=outcome, buildup_s=7.0, params=params,
                                    rng=np.random.default_rng(9), sr=SR)
        levels[outcome] = 20 * np.log10(np.sqrt(np.mean(y[: 6 * SR] ** 2)))
    assert abs(levels["goal"] - levels["no_goal"]) < 1.5  # dB over the build-up


def test_chatting_crowds_have_a_lower_centroid_than_cheering_ones():
    params = make_params("smoke", class_overlap=0.0, event_variability=0.0)
    cents = {}
    for label in ("joy", "neutral"):
        values = []
        for k in range(2):
            ev = S.make_event(f"{label}{k}", label, np.random.default_rng(k), params=params, sr=SR)
            y, _ = S.render_emotion_clip(ev, 4.0, params=params, rng=np.random.default_rng(k),
                                         sr=SR)
            values.append(centroid_hz(y))
        cents[label] = np.mean(values)
    assert cents["neutral"] < cents["joy"]


# ---------------------------------------------------------------------------
# collections, determinism, command line


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    folders = synthesize(out, preset="smoke", seed=0, workers=1, progress=False)
    return out, folders


def test_smoke_preset_writes_the_clips_table_contract(smoke):
    out, folders = smoke
    assert set(folders) == {"emotions", "football"}
    emo = read_clips(folders["emotions"])
    foot = read_clips(folders["football"])
    assert emo["label"].value_counts().to_dict() == {"joy": 2, "anger": 2, "neutral": 2}
    assert foot["label"].value_counts().to_dict() == {"goal": 2, "no_goal": 2}
    assert foot["event_id"].nunique() == 1
    assert emo["event_id"].nunique() == len(emo)  # one event per emotion clip by default
    for table in (emo, foot):
        assert list(table.columns[: len(CLIP_COLUMNS)]) == CLIP_COLUMNS
        assert (table["source"] == "synthetic").all()
        assert (table["licence"] == LICENCE).all()
        for row in table.itertuples():
            info = sf.info(row.path)
            assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
            assert info.frames / info.samplerate == pytest.approx(row.duration_s, abs=1e-4)
            assert sha256_file(row.path) == row.sha256
            meta = json.loads(row.params)
            assert meta["generator"]["class_overlap"] == make_params("smoke").class_overlap
            assert "venue" in meta["clip"]
    assert (folders["emotions"] / "card.md").read_text().startswith("# Synthetic crowd sounds")


def test_clips_of_one_event_share_the_codec_cut_off(smoke, tmp_path):
    _, folders = smoke
    chains = {(c["lowpass_hz"], c["hf_rolloff_hz"], c["highpass_hz"])
              for c in (json.loads(p)["clip"] for p in read_clips(folders["football"])["params"])}
    assert len(chains) == 1  # the match's recording chain, in every action
    # Without spread between events (no high-frequency roll-off, the cut at 16 kHz)
    # the cut itself is measurable above the hiss.
    foot = read_clips(synthesize(tmp_path, preset="smoke", seed=0, study="football", workers=1,
                                 progress=False, event_variability=0.0, goals=1,
                                 misses=1)["football"])
    cut = json.loads(foot["params"].iloc[0])["clip"]["lowpass_hz"]
    assert cut == 16000.0
    for row in foot.itertuples():
        y, sr = sf.read(row.path)
        f, p = scipy.signal.welch(y, sr, nperseg=4096)
        below = p[(f > cut - 3000) & (f < cut - 1000)].mean()
        above = p[(f > cut + 1500) & (f < min(cut + 3500, 21000))].mean()
        # dB: the event's codec removed the top, down to the hiss (-70 dBFS here),
        # which bounds the step a stadium's weak top octave can show
        assert 10 * np.log10(below / above) > 15.0


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = dict(preset="smoke", study="emotions", progress=False, joy_durations_s=(3.0,),
              anger_durations_s=(3.0,), neutral_durations_s=(3.0,))
    a = synthesize(tmp_path / "a", seed=5, workers=1, **kw)["emotions"]
    b = synthesize(tmp_path / "b", seed=5, workers=2, **kw)["emotions"]
    c = synthesize(tmp_path / "c", seed=6, workers=1, **kw)["emotions"]
    ta, tb, tc = (pd.read_csv(x / "clips.csv") for x in (a, b, c))
    assert list(ta["sha256"]) == list(tb["sha256"])  # parallel or not, the same bytes
    for name in ta["path"]:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert not set(ta["sha256"]) & set(tc["sha256"])


def test_clips_of_one_event_share_its_venue():
    params = make_params("smoke", joy_durations_s=(2.0, 2.0, 2.0), clips_per_event=2)
    tasks = [t for t in plan_clips(params, seed=4, study="emotions") if t["label"] == "joy"]
    assert [t["event_id"] for t in tasks] == ["synth-joy-event00", "synth-joy-event00",
                                              "synth-joy-event01"]
    infos = [render_clip(t, params, seed=4)[1] for t in tasks]
    same = ("venue", "t60_s", "crowd_size", "lowpass_hz", "highpass_hz", "tilt_db_per_octave")
    assert all(infos[0][k] == infos[1][k] for k in same)
    assert any(infos[0][k] != infos[2][k] for k in same)


def test_a_clip_does_not_depend_on_the_other_classes():
    p1 = make_params("smoke", anger_durations_s=(3.0,))
    p2 = make_params("smoke", anger_durations_s=(3.0, 4.0, 5.0), neutral_durations_s=(2.0,))
    t1 = [t for t in plan_clips(p1, seed=3, study="emotions") if t["clip_id"] == "synth-joy-00"]
    t2 = [t for t in plan_clips(p2, seed=3, study="emotions") if t["clip_id"] == "synth-joy-00"]
    y1, _ = render_clip(t1[0], p1, seed=3)
    y2, _ = render_clip(t2[0], p2, seed=3)
    np.testing.assert_array_equal(y1, y2)


def test_command_line_renders_a_collection(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="crowdnb")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--preset", "smoke", "--seed", "1", "--out",
                              str(tmp_path), "--study", "football", "--set", "goals=1",
                              "--set", "misses=1", "--set", "action_duration_s=4,4",
                              "--workers", "1", "--quiet"])
    assert args.func(args) == 0
    table = read_clips(tmp_path / "football")
    assert sorted(table["label"]) == ["goal", "no_goal"]
    assert (table["duration_s"] == 4.0).all()
    assert not (tmp_path / "emotions").exists()
    assert "football" in capsys.readouterr().out
    bad = parser.parse_args(["synth", "--preset", "smoke", "--out", str(tmp_path),
                             "--set", "loudness=3"])
    with pytest.raises(ParameterError, match="loudness"):
        bad.func(bad)


def test_voices_reach_the_crowds_microphone_with_their_sound_powers_spectrum():
    """On-axis speech spectra less the talker's directivity index, octave by octave."""
    from scipy.signal import sosfreqz

    from crowdnb.synth.venue import OCTAVE_BANDS_HZ, VOICE_DI_DB, voice_power_sos

    bands = OCTAVE_BANDS_HZ[1:8]  # 125 Hz .. 8 kHz
    _, h = sosfreqz(voice_power_sos(44100), worN=bands, fs=44100)
    assert np.allclose(20 * np.log10(np.abs(h)), -np.asarray(VOICE_DI_DB), atol=0.5)


def test_only_the_voices_of_a_mix_are_heard_with_directivity():
    from scipy.signal import welch

    from crowdnb.synth.venue import Mix, draw_venue

    sr, n = 16000, 16000
    venue = draw_venue(np.random.default_rng(0), "room", variability=0.0)
    ir = np.zeros(64)
    ir[0] = 1.0
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    levels = {}
    for voice in (False, True):
        mix = Mix(n, sr, venue)
        mix.add(x, distance_m=1.0, voice=voice)
        y = mix.render(ir)
        f, p = welch(y, sr, nperseg=1024)
        levels[voice] = {b: 10 * np.log10(p[(f > b / 1.4) & (f < b * 1.4)].mean()) for b in (250, 4000)}
    assert abs(levels[True][250] - levels[False][250] + 1.5) < 0.5
    assert abs(levels[True][4000] - levels[False][4000] + 4.9) < 0.7


def test_a_class_s_recording_chains_are_stratified_over_its_events():
    """Three neutral events: one in each third of every stratified draw, for any seed."""
    from crowdnb.synth.venue import STRATIFIED, draw_venue

    params = make_params("paper")
    for seed in range(20):
        neutral = [t for t in plan_clips(params, seed=seed, study="emotions")
                   if t["label"] == "neutral"]
        for name in STRATIFIED:
            thirds = sorted(int(3 * t["strata"][name]) for t in neutral)
            assert thirds == [0, 1, 2], (seed, name)
    rng = np.random.default_rng(0)
    bright = draw_venue(rng, "hall", strata={"hf_rolloff": 0.1, "highpass": 0.0, "lowpass": 0.9})
    dull = draw_venue(rng, "hall", strata={"hf_rolloff": 0.999, "highpass": 0.999, "lowpass": 0.01})
    assert bright.hf_rolloff_hz == 40000.0 and dull.hf_rolloff_hz == pytest.approx(2000.0, rel=0.01)
    assert bright.highpass_hz == pytest.approx(20.0) and dull.highpass_hz == pytest.approx(300.0, rel=0.01)
    assert bright.lowpass_hz > 18000.0 and dull.lowpass_hz < 4000.0
