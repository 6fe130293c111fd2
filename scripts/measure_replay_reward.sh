#!/bin/bash
# The paper's replay at surprise and reward-modulated learning against uniform, unmodulated training (README,
# section 7), at the reduced scale measured there: one dataset (planar arm, identical-looking other arm, scripted
# demonstrator, 32 px, 100 paired + 60 babbling episodes), 10 epochs, the shared condition, seeds 0-4, the four
# variants of one seed trained one after another so that machine load falls on all alike.
# Usage: bash scripts/measure_replay_reward.sh OUT   (on 2 busy cores: 25 min of training, 11 min of analysis, 30-40 of
# imitation)
set -euo pipefail
OUT=${1:?usage: measure_replay_reward.sh OUT}
ML=${MIRRORLAB:-.venv/bin/mirrorlab}
export MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=1
mkdir -p "$OUT/configs"
base='epochs = 10
inverse_babble = true'
printf '%s\n' "$base" > "$OUT/configs/uniform.toml"
printf '%s\nreplay = "surprise"\n' "$base" > "$OUT/configs/surprise.toml"
printf '%s\nreward_modulation = "self"\n' "$base" > "$OUT/configs/reward_self.toml"
printf '%s\nreward_modulation = "other"\n' "$base" > "$OUT/configs/reward_other.toml"
[ -f "$OUT/data/manifest.json" ] || $ML collect --demonstrator scripted --episodes 100 --babble 60 --out "$OUT/data" --workers 1
for seed in 0 1 2 3 4; do
  for v in uniform surprise reward_self reward_other; do
    start=$(date +%s.%N)
    $ML train --data "$OUT/data" --config "$OUT/configs/$v.toml" --seed $seed --out "$OUT/runs/$v/seed$seed" > /dev/null
    echo "$v $seed $(echo "$(date +%s.%N) - $start" | bc) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.txt"
  done
done
$ML analyze --runs "$OUT"/runs/*/seed* --out "$OUT/analysis" --workers 2
# Imitation per variant (its runs share condition and seed with the control's): the core's methods only.
printf 'episodes = 10\nappearances = []\nlearners = false\nmirror_conditions = ["shared"]\nplan_iterations = 50\n%s\n' \
  'patching = false
bootstrap = 500' > "$OUT/configs/imitate.toml"
for v in uniform surprise reward_self reward_other; do
  [ -f "$OUT/imitate-$v/imitation.csv" ] || $ML imitate --run "$OUT"/runs/$v/seed* --analysis "$OUT/analysis" \
    --config "$OUT/configs/imitate.toml" --out "$OUT/imitate-$v" --workers 2 --force
done
.venv/bin/python scripts/compare_variants.py "$OUT/analysis" "$OUT/times.txt" --imitation "$OUT/imitate-uniform" \
  surprise="$OUT/imitate-surprise" reward_self="$OUT/imitate-reward_self" reward_other="$OUT/imitate-reward_other"
