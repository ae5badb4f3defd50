#!/bin/sh
# make lint: the layering and hygiene rules a compiler does not check.
# Each rule prints the offending lines and fails the run.
set -u
cd "$(dirname "$0")/.."
fail=0
rule() {	# rule "why" < offending lines
	out=$(cat)
	if [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		echo "lint: $1" >&2
		fail=1
	fi
}
SRC=$(find cloud fs csi -name '*.[ch]' | sort)

# Banned string functions: bounded buffers only (kf_buf, snprintf).
grep -nE '\b(strcpy|strcat|strncpy|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\(' \
	$SRC tests/unit/*.c | rule "banned function (use kf_buf or snprintf)"

# Printing secret memory.
grep -nE '\b(printf|fprintf)\s*\([^)]*(->data|secret)' $SRC |
	rule "printing secret memory?"

# cloud/ never reaches back into fs/: no FUSE header, and every quoted
# include names its room (core/, aws/, gcp/, local/) or is provider.h.
grep -nE '#include\s*<fuse' $(find cloud -name '*.[ch]') |
	rule "cloud/ includes a FUSE header"
grep -nE '#include\s*"' $(find cloud -name '*.[ch]') |
	grep -vE '#include\s*"((core|aws|gcp|local)/[a-z0-9_]+\.h|provider\.h)"' |
	rule "cloud/ includes a header outside cloud/'s rooms"

# csi/ (the Kubernetes provider) is no FUSE program; nghttp2 (its gRPC
# transport) stays in csi/grpc.c.
grep -nE '#include\s*<fuse' $(find csi -name '*.[ch]') |
	rule "csi/ includes a FUSE header"
grep -nE '#include\s*<nghttp2/' $SRC | grep -v '^csi/grpc\.c:' |
	rule "only csi/grpc.c includes nghttp2"

# One OpenSSL user, one libcurl user.
grep -nE '#include\s*<openssl/' $SRC | grep -v '^cloud/core/crypto\.c:' |
	rule "only cloud/core/crypto.c includes OpenSSL"
grep -nE '#include\s*<curl/' $SRC | grep -vE '^cloud/core/http\.[ch]:' |
	rule "only cloud/core/http.[ch] include libcurl"

# snprintf: a statement that discards the result must say so with
# (void); otherwise check the result for truncation.
for f in $SRC; do
	awk -v f="$f" '
		/^[ \t]*snprintf[ \t]*\(/ && prev !~ /(\|\||&&|\(|=|,|\?|:|!)[ \t]*$/ {
			printf "%s:%d: %s\n", f, NR, $0 }
		NF { prev = $0 }' "$f"
done | rule "snprintf result unchecked: check for truncation or cast to (void)"

# Functions stay short: none over 120 lines, at most 5 over 80 (pmccabe's
# fifth column is the function's length in lines).
if command -v pmccabe >/dev/null; then
	long=$(pmccabe $(find cloud fs csi -name '*.c' | sort) | awk '$5 > 80')
	printf '%s\n' "$long" | awk '$5 > 120' |
		rule "function over 120 lines"
	if [ "$(printf '%s\n' "$long" | grep -c .)" -gt 5 ]; then
		printf '%s\n' "$long" | rule "more than 5 functions over 80 lines"
	fi
else
	echo "lint: pmccabe missing (apt-get install pmccabe)" >&2
	fail=1
fi

# No source file over 1,000 lines.
wc -l $SRC | awk '$2 != "total" && $1 > 1000' | rule "file over 1,000 lines"

exit $fail
