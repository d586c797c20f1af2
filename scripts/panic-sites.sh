#!/usr/bin/env bash
# panic-sites.sh: which functions of a firmware ELF can reach a panic.
#
#   scripts/panic-sites.sh ELF            one line per (function, panic kind)
#   scripts/panic-sites.sh --ours ELF     the lines of functions of our crates
#   scripts/panic-sites.sh --count ELF    number of distinct functions of our
#                                         crates that reach a panic
#   scripts/panic-sites.sh --check MACHINE ELF
#                                         the gate of the product images: every
#                                         function of ours that reaches a panic
#                                         must be in partition/panic-allowlist.txt
#                                         under MACHINE, with its reason; fails
#                                         naming the first that is not
#
# DESIGN.md, rules of the house: "Firmware paths must not panic". The
# compiler proves many checks away; those it cannot prove leave a branch to a
# panic entry point in the image. This script disassembles ELF (AArch64 or
# AArch32; llvm-objdump if present, else the cross binutils objdump for the
# ELF's machine) and lists every function that branches (bl, b, b.cond,
# b<cond>, blx, cbz/cbnz, tbz/tbnz) to a panic entry point:
#
#   core::panicking::*                 panic, panic_fmt, panic_bounds_check,
#                                      panic_const::panic_const_div_by_zero, ...
#   core::cell::panic_*                RefCell already (mutably) borrowed
#   core::option::unwrap_failed / expect_failed, core::result::unwrap_failed
#   core::slice::index::*fail*         slice_index_fail, slice_end_index_len_fail, ...
#   core::slice::*len_mismatch*        copy_from_slice length mismatch
#
# Branches through a middleman are resolved to the function that took them:
# machine-outliner stubs (OUTLINED_FUNCTION_N, shared tails such as
# "mov w1, #1; b panic_bounds_check"), linker thunks/veneers, and
# out-of-line core/alloc helpers (<[T; N] as Index>::index, split_at,
# RefCell::borrow_mut, ...: monomorphised for our types but not inlined at
# opt-level z). Such a middleman is listed itself only if nothing calls it
# directly (it is reached through a function pointer or a vtable).
#
# Output (tab separated, sorted by function; hashes stripped, legacy Rust
# mangling escapes such as $LT$ decoded):
#
#   FUNCTION <TAB> PANIC-KIND <TAB> SITES <TAB> VIA
#
# SITES is the number of branch instructions in FUNCTION that lead to
# PANIC-KIND, VIA is "direct" or the middlemen the branches go through
# (a chain is written "a > b"). Monomorphisations of one generic function
# share a name and so a line. Panic entry points calling each other
# (unwrap_failed -> panic -> panic_fmt) are not listed.
#
# --count prints only how many distinct FUNCTION names of our crates
# (virtio_backend, scmi_server, virtio_scmi, platform_*, transport_*,
# scmi_fw_*, scmi_sp_*, scmi_xen_*; a trait impl
# "<our::Type as Trait>::f" counts as ours) appear. core, compiler_builtins,
# the runtimes (aarch64_rt, aarch32_rt: their default exception handlers
# panic by design) and third-party crates (arm_gic, safe_mmio, ...) are left
# out of the count, not out of the list.
#
# Exits 0 whatever it finds (it is a report, not a gate; --check is the
# gate); non-zero only if the ELF or a disassembler is missing.
set -euo pipefail

usage() { echo "usage: $0 [--count | --ours | --check MACHINE] ELF" >&2; exit 2; }

COUNT=0
OURS=0
case "${1:-}" in
    --count) COUNT=1; shift ;;
    --ours) OURS=1; shift ;;
    --check)
        [ $# -eq 3 ] || usage
        machine=$2 elf=$3 n=0
        allow="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/partition/panic-allowlist.txt"
        list=$("$0" --ours "$elf" | cut -f1 | sort -u)
        while IFS= read -r f; do
            [ -n "$f" ] || continue
            n=$((n + 1))
            if ! awk -F'\t' -v m="$machine" -v f="$f" '$1 == m && $2 == f {found = 1} END {exit !found}' "$allow"; then
                "$0" "$elf" | grep -F "$f" >&2 || true
                echo "$machine: $f can reach a panic and is not in partition/panic-allowlist.txt" >&2
                exit 1
            fi
        done <<<"$list"
        printf '%s: functions of ours that can reach a panic: %d, all in partition/panic-allowlist.txt\n' "$machine" "$n"
        exit 0
        ;;
esac
[ $# -eq 1 ] || usage
ELF=$1
[ -f "$ELF" ] || { echo "$0: $ELF: no such file" >&2; exit 1; }

# ELF header: e_machine (little-endian half word at offset 18): 0xb7 AArch64, 0x28 ARM.
machine=$(od -An -tx1 -j18 -N2 "$ELF" | tr -d ' \n')
case "$machine" in
    b700) cross=(aarch64-none-elf-objdump aarch64-linux-gnu-objdump aarch64-unknown-linux-gnu-objdump) ;;
    2800) cross=(arm-none-eabi-objdump arm-linux-gnueabihf-objdump arm-linux-gnueabi-objdump) ;;
    *) cross=() ;;
esac
OBJDUMP=
# The toolchain's own (rustup component llvm-tools) first: it knows Rust's
# mangling and is what scripts/setup-host.sh installs.
sysroot_objdump=$(ls "$(rustc --print sysroot 2>/dev/null)"/lib/rustlib/*/bin/llvm-objdump 2>/dev/null | head -n 1 || true)
for tool in ${sysroot_objdump:+"$sysroot_objdump"} llvm-objdump $(compgen -c llvm-objdump- | sort -t- -k3 -rn) rust-objdump "${cross[@]}"; do
    if command -v "$tool" >/dev/null 2>&1; then
        OBJDUMP=$tool
        break
    fi
done
[ -n "$OBJDUMP" ] || { echo "$0: no llvm-objdump or cross objdump for machine $machine" >&2; exit 1; }

"$OBJDUMP" -d --no-show-raw-insn -C "$ELF" | awk -F'\t' -v count="$COUNT" -v only_ours="$OURS" '
# Legacy Rust mangling survives Itanium demangling as $LT$, .. and so on;
# strip the ::h<16 hex> hash as well. Idempotent on fully demangled names.
# (POSIX awk: mawk has no {n} intervals.)
function pretty(s) {
    if (match(s, /::h[0-9a-f]+$/) && RLENGTH == 19) s = substr(s, 1, RSTART - 1)
    gsub(/::_\$/, "::$", s); sub(/^_\$/, "$", s); gsub(/<_\$/, "<$", s)
    gsub(/\$LT\$/, "<", s); gsub(/\$GT\$/, ">", s); gsub(/\$RF\$/, "\\&", s)
    gsub(/\$BP\$/, "*", s); gsub(/\$C\$/, ",", s); gsub(/\$SP\$/, "@", s)
    gsub(/\$u20\$/, " ", s); gsub(/\$u27\$/, "'"'"'", s); gsub(/\$u5b\$/, "[", s)
    gsub(/\$u5d\$/, "]", s); gsub(/\$u3b\$/, ";", s); gsub(/\$u7b\$/, "{", s)
    gsub(/\$u7d\$/, "}", s); gsub(/\$u7e\$/, "~", s); gsub(/\$u2b\$/, "+", s)
    gsub(/\$u22\$/, "\"", s); gsub(/\.\./, "::", s)
    return s
}
function is_entry(p) {
    return p ~ /^core::panicking::/ || p ~ /^core::cell::panic_/ ||
           p ~ /^core::option::(unwrap_failed|expect_failed)$/ ||
           p ~ /^core::result::unwrap_failed$/ ||
           p ~ /^core::slice::index::.*fail/ || p ~ /^core::slice::.*len_mismatch/
}
# The crate a function belongs to: the first path of its name, or for an
# impl on a primitive, slice or reference ("<[u8; 16] as core::ops::Index<..>>",
# "<u32>::_fmt", "<&T as core::fmt::Debug>") the trait'"'"'s crate, else core.
function owner(p,    s) {
    s = p
    sub(/^<+/, "", s)
    if (match(s, /^[A-Za-z_][A-Za-z0-9_]*::/)) return substr(s, 1, RLENGTH - 2)
    if (match(s, / as [A-Za-z_][A-Za-z0-9_]*::/)) return substr(s, RSTART + 4, RLENGTH - 6)
    # A plain symbol (an entry point such as kmain, memcpy): its own owner.
    if (s ~ /^[A-Za-z_][A-Za-z0-9_]*$/) return s
    return "core"
}
# Middlemen: resolved to their callers.
function is_transparent(p,    o) {
    if (p ~ /^OUTLINED_FUNCTION_[0-9]+$/ || p ~ /[Tt]hunk|[Vv]eneer/) return 1
    o = owner(p)
    return o == "core" || o == "alloc"
}
function ours(p) {
    return owner(p) ~ /^(virtio_backend|scmi_server|virtio_scmi|platform_.*|transport_.*|scmi_fw_.*|scmi_sp_.*|scmi_xen_.*|kmain|kmain_secondary)$/
}
# AArch32 mapping symbols ($a code, $d data, $t Thumb) are no functions.
function is_mapping(name) { return name ~ /^\$[adtx](\..*)?$/ }
# Kinds reachable from middleman t: kinds[t] = "kind\x01chain\x02..." (first chain found).
function resolve(t,    i, n, c, u, parts, kv, res, seen_k, sub_res, m, j, p2) {
    if (t in done) return kinds[t]
    if (t in active) return ""
    active[t] = 1
    res = ""
    n = ncallees[t]
    for (i = 1; i <= n; i++) {
        u = callee[t, i]
        if (entry[u]) {
            if (!((t SUBSEP u) in seen_k)) { seen_k[t, u] = 1; res = res u "\001" P[t] "\002" }
        } else if (transparent[u]) {
            sub_res = resolve(u)
            m = split(sub_res, parts, "\002")
            for (j = 1; j <= m; j++) {
                if (parts[j] == "") continue
                split(parts[j], kv, "\001")
                if (!((t SUBSEP kv[1]) in seen_k)) {
                    seen_k[t, kv[1]] = 1
                    res = res kv[1] "\001" P[t] " > " kv[2] "\002"
                }
            }
        }
    }
    delete active[t]
    done[t] = 1
    kinds[t] = res
    return res
}
/^[0-9a-f]+ <.*>:$/ {
    name = $0
    sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name)
    if (is_mapping(name)) next
    fn = name
    if (!(fn in P)) P[fn] = pretty(fn)
    if (!(fn in labelled)) { labelled[fn] = 1; order[++nfn] = fn }
    next
}
fn != "" && NF >= 3 {
    mn = $2
    if (mn !~ /^(b|bl|blx|bx)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(\.w|\.n)?$/ &&
        mn !~ /^b\.[a-z][a-z]$/ && mn !~ /^(cbz|cbnz|tbz|tbnz)$/) next
    op = $3
    sub(/ @ .*$/, "", op)                        # AArch32: "0x8000 <f> @ imm = #..."
    i = index(op, "<"); if (i == 0) next
    t = substr(op, i + 1); sub(/>$/, "", t)
    sub(/\+0x[0-9a-f]+$/, "", t)                 # a label inside t
    if (t == fn || is_mapping(t)) next
    if (!(t in P)) P[t] = pretty(t)
    if (!((fn SUBSEP t) in edge)) { edge[fn, t] = 1; callee[fn, ++ncallees[fn]] = t; ncallers[t]++ }
    sites[fn, t]++
}
END {
    for (f in P) { entry[f] = is_entry(P[f]); transparent[f] = !entry[f] && is_transparent(P[f]) }
    for (k = 1; k <= nfn; k++) {
        f = order[k]
        if (entry[f]) continue
        if (transparent[f] && ncallers[f] > 0) continue
        for (i = 1; i <= ncallees[f]; i++) {
            u = callee[f, i]
            if (entry[u]) {
                key = P[f] "\t" P[u]
                n_sites[key] += sites[f, u]
                if (!((key SUBSEP "direct") in via_seen)) { via_seen[key, "direct"] = 1; via[key] = via[key] (via[key] == "" ? "" : ", ") "direct" }
            } else if (transparent[u]) {
                m = split(resolve(u), parts, "\002")
                for (j = 1; j <= m; j++) {
                    if (parts[j] == "") continue
                    split(parts[j], kv, "\001")
                    key = P[f] "\t" P[kv[1]]
                    n_sites[key] += sites[f, u]
                    if (!((key SUBSEP kv[2]) in via_seen)) { via_seen[key, kv[2]] = 1; via[key] = via[key] (via[key] == "" ? "" : ", ") kv[2] }
                }
            }
        }
    }
    for (key in n_sites) {
        if (count) {
            split(key, fk, "\t")
            if (ours(fk[1])) fns[fk[1]] = 1
        } else {
            split(key, fk, "\t")
            if (!only_ours || ours(fk[1])) print key "\t" n_sites[key] "\t" via[key] | "LC_ALL=C sort"
        }
    }
    if (count) { c = 0; for (f in fns) c++; print c }
}'
