#!/usr/bin/env bash
# Self-signed TLS certificates for a SuperLink, and SuperNode authentication keys, for testing a
# secure federation (on localhost by default). Not for production: use certificates from a real CA.
# Usage: sh training_scripts/make_certificates.sh DIR [NUM_SUPERNODES]
#   DIR/ca.crt                      CA certificate: SuperNodes (--root-certificates) and the flwr CLI
#                                   (root-certificates in $FLWR_HOME/config.toml) trust the SuperLink with it
#   DIR/server.pem, DIR/server.key  SuperLink certificate (SANs: localhost, 127.0.0.1, $cert_hosts) and key
#   DIR/supernode_<i>, .pub         ECDSA P-384 key pair (OpenSSH format) of SuperNode i, for
#                                   --auth-supernode-private-key and `flwr supernode register`
cert_hosts=${cert_hosts:-}   # further SuperLink host names / IPs for the certificate, space separated
days=${days:-30}             # validity of the certificates

set -eu
dir=${1:?usage: make_certificates.sh DIR [NUM_SUPERNODES]}
num_supernodes=${2:-0}
mkdir -p "$dir"
cd "$dir"

san="DNS:localhost,IP:127.0.0.1"
for host in $cert_hosts; do
  case "$host" in
    *[!0-9.]*) san="$san,DNS:$host" ;;
    *) san="$san,IP:$host" ;;
  esac
done

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" -subj "/CN=fedrouter test CA" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$san" > server.ext
openssl x509 -req -sha256 -days "$days" -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key

i=0
while [ "$i" -lt "$num_supernodes" ]; do
  rm -f "supernode_$i" "supernode_$i.pub"
  ssh-keygen -q -t ecdsa -b 384 -N "" -C "supernode_$i" -f "supernode_$i"
  i=$((i + 1))
done
echo "certificates in $PWD (SANs: $san); $num_supernodes SuperNode key pair(s)"
