#!/usr/bin/env bash
# install.sh -- `make install` into a temporary DESTDIR and `make uninstall`:
# every file lands with its mode, the generated man page and example config
# match what the installed binary prints, the man page renders without
# warnings and lists every option --help lists, systemd-analyze accepts the
# unit, an edited config survives reinstall and uninstall, and uninstall
# leaves no file behind. Prints the SC-RESULT line tests/run.sh adds up.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/semcached-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/root  # the DESTDIR; scratch files stay beside it
passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
skip() { skipped=$((skipped + 1)); echo "SKIP: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

inst() { make --no-print-directory -s BUILD="$BUILD" DESTDIR="$dest" "$@" 2>&1; }
out=$(inst install) || { bad "make install: $out"; echo "SC-RESULT passed=$passed failed=$failed skipped=$skipped"; exit 0; }

bin=$dest/usr/local/bin
man=$dest/usr/local/share/man/man1/semcached.1
unit=$dest/usr/local/lib/systemd/system/semcached.service
rot=$dest/etc/logrotate.d/semcached
conf=$dest/etc/semcached/semcached.conf
for f in "$bin/semcached:755" "$bin/semcached-bench:755" "$bin/semcached-convert:755" \
         "$man:644" "$unit:644" "$rot:644" "$conf:644"; do
  path=${f%:*} mode=${f##*:}
  check "$path is not a file of mode $mode" [ "$(stat -c %F:%a "$path" 2>/dev/null)" = "regular file:$mode" ]
done
check "the installed binary does not run" "$bin/semcached" --version >/dev/null
check "the installed man page is not what --help-man prints" cmp -s "$man" <("$bin/semcached" --help-man)
check "the installed config is not what --help-config prints" cmp -s "$conf" <("$bin/semcached" --help-config)
check "the unit does not run the installed binary with the installed config" \
  grep -qx "ExecStart=/usr/local/bin/semcached --config /etc/semcached/semcached.conf" "$unit"
check "a placeholder was left in the unit or the logrotate snippet" bash -c "! grep -qE '@[A-Z]+@' '$unit' '$rot'"

# The options --help lists, each of which the rendered page must list too.
opts=$("$bin/semcached" --help | sed -n -E 's/^  (--[a-z0-9-]+).*/\1/p')
check "--help lists fewer than 70 options" [ "$(wc -l <<<"$opts")" -ge 70 ]
render=""
if command -v man >/dev/null; then
  render="man"
  page=$(MANWIDTH=100 man --warnings -l "$man" 2>"$work/warnings")
elif command -v groff >/dev/null; then
  render="groff"
  page=$(groff -man -Tutf8 -ww "$man" 2>"$work/warnings" | sed 's/.\x08//g')
fi
if [ -n "$render" ]; then
  check "$render warns about the man page: $(head -c 300 "$work/warnings")" [ ! -s "$work/warnings" ]
  # Renderers may print U+2212/U+2010 for \- and -: compare in ASCII.
  page=$(sed 's/\xe2\x88\x92/-/g; s/\xe2\x80\x90/-/g' <<<"$page")
  missing=""
  for o in $opts; do
    grep -qE "^ +$o( |$)" <<<"$page" || missing="$missing $o"
  done
  check "the rendered man page lacks$missing" [ -z "$missing" ]
  check "the man page has no CONFIGURATION FILE section" grep -q "^CONFIGURATION FILE" <<<"$page"
else
  skip "neither man nor groff is installed: the man page was not rendered"
fi

# systemd-analyze checks the unit's keys and values, that ExecStart is
# executable and that Documentation=man:semcached(1) resolves: the copy it
# checks points into the DESTDIR tree.
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/verify"
  sed "s|/usr/local/bin/semcached|$bin/semcached|" "$unit" >"$work/verify/semcached.service"
  vout=$(MANPATH="$dest/usr/local/share/man:" systemd-analyze verify "$work/verify/semcached.service" 2>&1)
  vrc=$?
  check "systemd-analyze verify (exit $vrc): $vout" [ "$vrc:$vout" = "0:" ]
  rm -r "$work/verify"
else
  skip "systemd-analyze is not installed: the unit was not verified"
fi
if command -v logrotate >/dev/null; then
  check "logrotate rejects the snippet" logrotate --debug --state "$work/state" "$rot" >/dev/null 2>&1
  rm -f "$work/state"
else
  skip "logrotate is not installed: the snippet was not checked"
fi

# The administrator's config is theirs: reinstall and uninstall keep an edit.
echo "port = 9999" >>"$conf"
out=$(inst install)
check "reinstall overwrote an edited config" grep -qx "port = 9999" "$conf"
out=$(inst uninstall)
check "uninstall removed an edited config" [ -f "$conf" ]
check "uninstall did not say it kept the edited config" grep -q "kept .*semcached.conf" <<<"$out"
rm -f "$conf"

# A fresh install, uninstalled: not one file (or link) is left.
inst install >/dev/null
out=$(inst uninstall)
left=$(find "$dest" -type f -o -type l)
check "uninstall left$(printf ' %s' $left)" [ -z "$left" ]
check "uninstall left /etc/semcached" [ ! -e "$dest/etc/semcached" ]

echo "SC-RESULT passed=$passed failed=$failed skipped=$skipped"
