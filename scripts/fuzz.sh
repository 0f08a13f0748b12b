#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time.
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (60) each
#   scripts/fuzz.sh context_path    one target
#   scripts/fuzz.sh --merge [T…]    add to the committed corpus fuzz/corpus/<target>
#                                   the inputs of fuzz/work/<target> that reach new coverage
#
# New inputs go to fuzz/work/<target> (not committed); fuzz/corpus/<target> is
# read as seeds. A crash stops the run with the input under fuzz/artifacts/ and
# exits non-zero: turn it into a regression test beside the code it broke.
# libFuzzer's sanitizer flags are nightly-only; RUSTC_BOOTSTRAP lets the
# machine's stable toolchain take them, so no second toolchain is needed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-60}
merge=false
if [ "${1:-}" = "--merge" ]; then merge=true; shift; fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
fuzz() { cargo fuzz "$@"; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(fuzz list)
fi

summary=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "corpus/$target"
  dict=()
  case $target in
    rule_validator | condition_eval | event_validator) dict=(-dict=dict/json.dict) ;;
  esac
  if $merge; then
    fuzz run "$target" "corpus/$target" "work/$target" -- -merge=1 "${dict[@]}"
    continue
  fi
  log="work/$target.log"
  echo "== $target: ${seconds}s"
  status=0
  fuzz run "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  grep -E '^(#[0-9]+\s+(INITED|DONE)|==[0-9]+==|SUMMARY|thread .* panicked)' "$log" || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$status" -ne 0 ]; then
    echo "$target: CRASH (exit $status), input under fuzz/artifacts/$target/; log in fuzz/$log" >&2
    exit "$status"
  fi
  summary+=("$target: ${execs:-?} executions in ${seconds}s, no crash")
done
if ! $merge; then
  printf '\n'
  printf '%s\n' "${summary[@]}"
fi
