#!/usr/bin/env bash
# Every benchmark that issue 11 sets a target for, in one run, into one results
# file: the engine's instructions and allocations per request against
# tower-http (`cargo bench -p crossgate-cors --bench instructions`), the
# gateway's instructions and system calls per request against nginx
# (bench/instructions.sh), and throughput, p99 latency and peak RSS under load
# against nginx (bench/gateway.sh), one after the other so that no two measure
# at the same time. The results file holds the commit, the date, the machine
# and the knobs, every figure next to its counterpart as a ratio, and one line
# per target saying whether it is met or by how much it is missed.
#
# Knobs (environment): RESULTS_DIR (default target/bench); every knob of the
# three benchmarks passes through to them: INSTRUCTIONS_N and INSTRUCTIONS_M
# (engine), REQUESTS_N, REQUESTS_M, TOOLS (bench/instructions.sh), DURATION,
# CONNECTIONS, ROUNDS, H2_STREAMS (bench/gateway.sh), PROTOCOLS and SCENARIOS
# (both gateway scripts; gateway.sh takes only preflight and get), PORT_OFFSET
# (both gateway scripts).
#
# Writes RESULTS_DIR/results.md, RESULTS_DIR/figures.tsv (every figure, one
# "key<TAB>value" a line) and each benchmark's own output under
# RESULTS_DIR/logs/. Fails, naming the figure, when a tool's output cannot be
# read.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
source scripts/lib.sh

results_dir="${RESULTS_DIR:-${CARGO_TARGET_DIR:-$repo_root/target}/bench}"
logs="$results_dir/logs"
results="$results_dir/results.md"
export FIGURES="$results_dir/figures.tsv"
mkdir -p "$logs"
: >"$FIGURES"

knob_names=(INSTRUCTIONS_N INSTRUCTIONS_M REQUESTS_N REQUESTS_M TOOLS DURATION CONNECTIONS ROUNDS
    H2_STREAMS PROTOCOLS SCENARIOS PORT_OFFSET)

step() {
    printf '\n==> %s\n' "$*"
}

# The engine bench prints a markdown table; its header is matched exactly so
# that a changed table fails here instead of being misread.
engine_header='| scenario | baseline tower | crossgate layer added | tower-http added | crossgate / tower-http | crossgate engine added | allocations added: crossgate layer / tower-http / engine |'

# Reads the engine bench's table from its output and appends its figures.
read_engine_table() {
    local log=$1 row scenario baseline layer tower engine allocations alloc_layer alloc_tower alloc_engine
    local -a names=()
    if ! grep -qxF -- "$engine_header" "$log"; then
        echo "error: the engine bench's output ($log) has no table with the header:" >&2
        echo "$engine_header" >&2
        exit 1
    fi
    while IFS='|' read -r _ scenario baseline layer tower _ engine allocations rest; do
        [[ -z $rest ]] || {
            echo "error: a row of the engine table has more columns than its header: |$scenario|$rest" >&2
            exit 1
        }
        scenario="$(xargs <<<"$scenario")"
        IFS='/' read -r alloc_layer alloc_tower alloc_engine <<<"$allocations"
        for row in baseline layer tower engine alloc_layer alloc_tower alloc_engine; do
            printf -v "$row" '%s' "$(xargs <<<"${!row}")"
            require_number "the engine's $scenario $row" "${!row}"
        done
        emit_figure "engine.$scenario.baseline" "$baseline"
        emit_figure "engine.$scenario.layer_added" "$layer"
        emit_figure "engine.$scenario.tower_http_added" "$tower"
        emit_figure "engine.$scenario.engine_added" "$engine"
        emit_figure "engine.$scenario.alloc_layer" "$alloc_layer"
        emit_figure "engine.$scenario.alloc_tower_http" "$alloc_tower"
        emit_figure "engine.$scenario.alloc_engine" "$alloc_engine"
        names+=("$scenario")
    done < <(awk -v header="$engine_header" '
        $0 == header { inside = 1; getline; next }
        inside && /^\|/ { print; next }
        inside { exit }' "$log")
    if ((${#names[@]} == 0)); then
        echo "error: the engine table in $log has no rows" >&2
        exit 1
    fi
    emit_figure engine.scenarios "${names[*]}"
    emit_figure engine.runs "$(grep -m1 '^## Per request' "$log" | sed 's/^## //')"
}

run_step() {
    local name=$1
    shift
    step "$name: $*"
    "$@" | tee "$logs/$name.log"
}

install_missing_packages valgrind strace nginx curl wrk h2load=nghttp2-client

started="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

run_step engine cargo bench -p crossgate-cors --bench instructions
read_engine_table "$logs/engine.log"
run_step instructions bench/instructions.sh
run_step gateway bench/gateway.sh

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

declare -A figures=()
while IFS=$'\t' read -r key value; do
    figures[$key]=$value
done <"$FIGURES"

# figure KEY: the figure's value, or a loud exit naming it. Used inside
# command substitutions whose failure the shell does not always see (printf's
# arguments), so a missing figure is also noted in a file checked at the end.
missing_figures="$results_dir/missing-figures"
rm -f "$missing_figures"
figure() {
    if [[ -z ${figures[$1]+set} ]]; then
        echo "error: no figure '$1' in $FIGURES; the benchmark that measures it did not print it" >&2
        echo "$1" >>"$missing_figures"
        exit 1
    fi
    echo "${figures[$1]}"
}

# ratio OURS THEIRS; a counterpart of 0 means its measurement failed.
ratio() {
    if ! awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        echo "error: a counterpart figure is $2, so no ratio to it" >&2
        echo "ratio to $2" >>"$missing_figures"
        exit 1
    fi
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'
}

# judge OP LIMIT FORMAT: reads "label<TAB>value" lines (the cases of one
# target) and prints "measured<TAB>verdict". OP is le (value <= LIMIT), ge
# (value >= LIMIT) or lt (value < LIMIT); FORMAT is printf's for a value. A
# missed case says by how much: in percent for a ratio target of 1, in the
# value's unit for a limit of 0, in both otherwise.
judge() {
    awk -F'\t' -v op="$1" -v limit="$2" -v format="$3" '
        {
            shown = sprintf(format, $2)
            measured = measured (NR > 1 ? ", " : "") $1 " " shown
            over = (op == "ge") ? limit - $2 : $2 - limit
            failed = (op == "lt") ? $2 >= limit : over > 0
            if (!failed) next
            if (limit == 1) how = sprintf("%.1f %%", over * 100)
            else if (limit == 0) how = sprintf(format, over)
            else how = sprintf(format " (%.1f %%)", over, over / limit * 100)
            missed = missed (missed == "" ? "" : ", ") $1 " by " how
            failures++
        }
        END {
            if (NR == 0) { print "not measured in this run\t**not measured**"; exit }
            if (failures == 0) verdict = "**met**"
            else verdict = sprintf("**missed** in %d of %d: %s", failures, NR, missed)
            printf "%s\t%s\n", measured, verdict
        }'
}

declare -a target_rows=()
# target DESCRIPTION OP LIMIT FORMAT CASES: judges CASES (from one of the
# *_cases functions below) into a row of the targets table.
target() {
    local description=$1 judged measured verdict
    judged="$(printf '%s' "$5" | judge "$2" "$3" "$4")"
    IFS=$'\t' read -r measured verdict <<<"$judged"
    target_rows+=("| $description | $measured | $verdict |")
}

engine_scenarios="$(figure engine.scenarios)"
calls_protocols="$(figure calls.protocols)"
calls_scenarios="$(figure calls.scenarios)"
calls_tools="$(figure calls.tools)"
load_protocols="$(figure load.protocols)"
load_scenarios="$(figure load.scenarios)"
load_connections="$(figure load.connections)"

# The cases of each target, as "label<TAB>value" lines.
engine_cases() {
    local scenario
    for scenario in $engine_scenarios; do
        case "$1" in
        ratio) printf '%s\t%s\n' "$scenario" "$(ratio "$(figure "engine.$scenario.layer_added")" \
            "$(figure "engine.$scenario.tower_http_added")")" ;;
        allocations) printf '%s\t%s\n' "$scenario" "$(figure "engine.$scenario.alloc_layer")" ;;
        esac
    done
}

calls_cases() {
    local metric=$1 only=${2:-} protocol scenario
    [[ $calls_tools == *"$([[ $metric == instructions ]] && echo callgrind || echo strace)"* ]] || return 0
    for protocol in $calls_protocols; do
        for scenario in $calls_scenarios; do
            [[ -z $only || $scenario == "$only" ]] || continue
            printf '%s %s\t%s\n' "$protocol" "$scenario" \
                "$(ratio "$(figure "calls.$protocol.$scenario.crossgate.$metric")" \
                    "$(figure "calls.$protocol.$scenario.nginx.$metric")")"
        done
    done
}

load_cases() {
    local metric=$1 protocol scenario conns
    for protocol in $load_protocols; do
        for scenario in $load_scenarios; do
            for conns in $load_connections; do
                printf '%s %s @%s\t%s\n' "$protocol" "$scenario" "$conns" \
                    "$(ratio "$(figure "load.$protocol.$scenario.c$conns.crossgate.$metric")" \
                        "$(figure "load.$protocol.$scenario.c$conns.nginx.$metric")")"
            done
        done
    done
}

rss_cases() {
    local protocol
    [[ " $load_connections " == *" 256 "* ]] || return 0
    for protocol in $load_protocols; do
        printf '%s @256\t%s\n' "$protocol" \
            "$(awk -v k="$(figure "rss.$protocol.c256.crossgate.kib")" 'BEGIN { print k / 1024 }')"
    done
}

# Each list of cases is taken in an assignment, so that a missing figure stops the run.
cases="$(engine_cases ratio)"
target "engine: crossgate layer's added instructions ≤ 0.33× tower-http's, every scenario" le 0.33 '%.2f' "$cases"
cases="$(engine_cases allocations)"
target "engine: 0 allocations added (crossgate layer)" le 0 '%.1f' "$cases"
cases="$(calls_cases instructions preflight)"
target "gateway preflight instructions ≤ 1.00× nginx's" le 1 '%.2f×' "$cases"
cases="$(calls_cases instructions get)"
target "gateway proxied GET instructions ≤ 1.00× nginx's" le 1 '%.2f×' "$cases"
cases="$(calls_cases syscalls)"
target "gateway system calls ≤ nginx's, every scenario" le 1 '%.2f×' "$cases"
cases="$(load_cases rps)"
target "throughput ≥ 1.00× nginx's requests/s" ge 1 '%.2f×' "$cases"
cases="$(load_cases p99_ms)"
target "p99 latency no worse than nginx's (≤ 1.00×)" le 1 '%.2f×' "$cases"
cases="$(rss_cases)"
target "crossgate's peak RSS < 30 MiB at 256 connections" lt 30 '%.1f MiB' "$cases"

commit="$(git rev-parse --short HEAD)"
subject="$(git log -1 --format=%s)"
dirty=""
[[ -z $(git status --porcelain --untracked-files=no) ]] || dirty=" (with uncommitted changes)"
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
memory="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
knobs=""
for name in "${knob_names[@]}"; do
    [[ -n ${!name:-} ]] && knobs+="$name=\"${!name}\" "
done
tool_versions="$(
    rustc --version
    valgrind --version
    strace -V | head -n1
    nginx -v 2>&1
    wrk -v 2>&1 | head -n1 || true
    h2load --version
)"

{
    echo "# crossgate benchmarks: one run of everything"
    echo
    echo "- commit: \`$commit\` ($subject)$dirty"
    echo "- run: $started to $(date -u '+%H:%M UTC')"
    echo "- machine: $(nproc) cores ($cpu), $memory, Linux $(uname -r); load average before $load_before, after $load_after"
    echo "- tools: $(tr '\n' ';' <<<"$tool_versions" | sed 's/;$//; s/;/; /g')"
    echo "- command: \`${knobs}bench/all.sh\`"
    echo
    echo "## Against the targets"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---|---|"
    printf '%s\n' "${target_rows[@]}"

    echo
    echo "## Engine: crossgate-cors vs tower-http, per request"
    echo
    echo "$(figure engine.runs); \`cargo bench -p crossgate-cors --bench instructions\`."
    echo
    echo "| scenario | baseline tower | crossgate layer added | tower-http added | crossgate / tower-http | crossgate engine added | allocations added: layer / tower-http / engine |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for scenario in $engine_scenarios; do
        printf '| %s | %s | %s | %s | %.2f | %s | %s / %s / %s |\n' "$scenario" \
            "$(figure "engine.$scenario.baseline")" "$(figure "engine.$scenario.layer_added")" \
            "$(figure "engine.$scenario.tower_http_added")" \
            "$(ratio "$(figure "engine.$scenario.layer_added")" "$(figure "engine.$scenario.tower_http_added")")" \
            "$(figure "engine.$scenario.engine_added")" "$(figure "engine.$scenario.alloc_layer")" \
            "$(figure "engine.$scenario.alloc_tower_http")" "$(figure "engine.$scenario.alloc_engine")"
    done

    echo
    echo "## Gateway: instructions and system calls per request, crossgate vs nginx"
    echo
    echo "$(figure calls.requests), (count(M) − count(N)) / (M − N); tools: $calls_tools; \`bench/instructions.sh\`."
    echo
    echo "| protocol | scenario | crossgate instructions | nginx instructions | ratio | crossgate syscalls | nginx syscalls | ratio |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for protocol in $calls_protocols; do
        for scenario in $calls_scenarios; do
            row="| $protocol | $scenario |"
            for metric in instructions syscalls; do
                key="calls.$protocol.$scenario"
                if [[ -n ${figures[$key.crossgate.$metric]+set} ]]; then
                    ours="$(figure "$key.crossgate.$metric")"
                    theirs="$(figure "$key.nginx.$metric")"
                    row+="$(awk -v a="$ours" -v b="$theirs" -v m="$metric" 'BEGIN {
                        f = (m == "instructions") ? "%.0f" : "%.2f"
                        printf " " f " | " f " | %.2f |", a, b, a / b }')"
                else
                    row+=" – | – | – |"
                fi
            done
            echo "$row"
        done
    done

    echo
    echo "## Gateway: throughput and p99 latency, crossgate vs nginx"
    echo
    echo "$(figure load.runs); \`bench/gateway.sh\`."
    echo
    echo "| protocol | scenario | connections | crossgate req/s | nginx req/s | ratio | crossgate p99 ms | nginx p99 ms | ratio |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for protocol in $load_protocols; do
        for scenario in $load_scenarios; do
            for conns in $load_connections; do
                key="load.$protocol.$scenario.c$conns"
                awk -v p="$protocol" -v s="$scenario" -v n="$conns" \
                    -v a="$(figure "$key.crossgate.rps")" -v b="$(figure "$key.nginx.rps")" \
                    -v c="$(figure "$key.crossgate.p99_ms")" -v d="$(figure "$key.nginx.p99_ms")" \
                    'BEGIN { printf "| %s | %s | %d | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f |\n", p, s, n, a, b, a / b, c, d, c / d }'
            done
        done
    done

    echo
    echo "## Peak RSS under that load (VmHWM, a fresh crossgate for each protocol and connection count)"
    echo
    echo "| protocol | connections | crossgate MiB | nginx worker MiB | ratio |"
    echo "|---|---:|---:|---:|---:|"
    for protocol in $load_protocols; do
        for conns in $load_connections; do
            awk -v p="$protocol" -v n="$conns" -v a="$(figure "rss.$protocol.c$conns.crossgate.kib")" \
                -v b="$(figure "rss.$protocol.c$conns.nginx.kib")" \
                'BEGIN { printf "| %s | %d | %.1f | %.1f | %.2f |\n", p, n, a / 1024, b / 1024, a / b }'
        done
    done
} >"$results"
if [[ -e $missing_figures ]]; then
    rm -f "$results"
    echo "error: figures missing (listed in $missing_figures); no results file written" >&2
    exit 1
fi

step "results: $results"
cat "$results"
