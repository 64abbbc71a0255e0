#!/usr/bin/env bash
# Removes what an sbxlet on bridge BRIDGE leaves on the host's network after
# its last sandbox is gone (by design: host ports and isolation must survive
# an sbxlet restart): its firewall chains SBX-FWD-, SBX-EGR-, SBX-IN-<BRIDGE>
# with their FORWARD/INPUT jumps, SBX-NAT-<BRIDGE> with its POSTROUTING
# jump, and the bridge itself. Used by the tests
# and `make down`; never touches another bridge's chains.
#   tools/net-cleanup.sh BRIDGE
set -u
br=${1:?usage: tools/net-cleanup.sh BRIDGE}
case "$br" in */*|*' '*|'') echo "net-cleanup: bad bridge name '$br'" >&2; exit 2 ;; esac
while iptables -w -D FORWARD -j "SBX-FWD-$br" 2>/dev/null; do :; done
while iptables -w -D INPUT -j "SBX-IN-$br" 2>/dev/null; do :; done
for c in "SBX-FWD-$br" "SBX-IN-$br" "SBX-EGR-$br"; do
  iptables -w -F "$c" 2>/dev/null
  iptables -w -X "$c" 2>/dev/null
done
# The masquerade chain (nat) and its POSTROUTING jump.
iptables-save -t nat 2>/dev/null | grep -- "^-A POSTROUTING .* -j SBX-NAT-$br\$" | sed 's/^-A //' |
  while read -r rule; do eval "iptables -w -t nat -D $rule"; done
iptables -w -t nat -F "SBX-NAT-$br" 2>/dev/null
iptables -w -t nat -X "SBX-NAT-$br" 2>/dev/null
# NAT rules the CNI plugins made for this bridge's network ("sbxnet-<BRIDGE>")
# and could not remove (a sandbox lost in a crash): the jumps to them, then
# their own chains. portmap's shared CNI-HOSTPORT-* chains stay (shared).
nat=$(iptables-save -t nat 2>/dev/null | grep -F "name: \\\"sbxnet-$br\\\"" | grep '^-A ' | grep -v '^-A CNI-[0-9a-f]\{24\} \|^-A CNI-DN-')
if [ -n "$nat" ]; then
  chains=$(grep -o ' -j CNI-[A-Za-z0-9-]*' <<<"$nat" | awk '{print $2}' | grep -v '^CNI-HOSTPORT-' | sort -u)
  { echo '*nat'
    sed 's/^-A /-D /' <<<"$nat"
    for c in $chains; do echo "-F $c"; echo "-X $c"; done
    echo COMMIT
  } | iptables-restore -w --noflush
fi
if ip link show "$br" >/dev/null 2>&1; then ip link del "$br"; fi
exit 0
