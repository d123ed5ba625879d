from studies.training_curves import curve_from_log


def test_an_rl2_progress_log_becomes_its_learning_curve(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        "rl2 on x:   0%|          | 0.00/5.00M [00:00<?, ?step/s]"
        "\rrl2 on x:  41%|####      | 2.05M/5.00M [08:35<12:30, 3.93kstep/s, trial_return=108.23]"
        "\rrl2 on x:  41%|####      | 2.05M/5.00M [08:37<12:02, 4.08kstep/s, trial_return=108.50]"
        "\rrl2 on x: 12.8k/70.0k [00:00<00:00, 58.7kstep/s, trial_return=-3.5]"
        "\rrl2 on x: 5.01Mstep [21:02, 4.02kstep/s, trial_return=120.01]\n"
    )
    # one point per step count (the later reading wins), in order; a bar without a return is no
    # point; the last line, past the total, is one
    assert curve_from_log(log) == [
        {"steps": 12800, "trial_return": -3.5},
        {"steps": 2050000, "trial_return": 108.5},
        {"steps": 5010000, "trial_return": 120.01},
    ]
