#!/usr/bin/env bash
# tests/mock/certs.sh — owns the test PKI of the provider mocks: a throw-away
# CA and one server certificate signed by it, valid for every official
# provider host (api.openai.com, api.anthropic.com, *.openai.azure.com, ...),
# localhost and 127.0.0.1 (plus any extra DNS names given).
#   tests/mock/certs.sh DIR [EXTRA_DNS_NAME...]
# Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key (EC P-256,
# valid 30 days).  Prints nothing on success; on failure prints openssl's
# complaint and exits non-zero.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [EXTRA_DNS_NAME...]" >&2; exit 2; }
d=$1; shift
mkdir -p "$d"
err=$(mktemp)
trap 'rm -f "$err" "$d/server.csr" "$d/server.ext"' EXIT
# run CMD...: quiet unless it fails.
run() { "$@" >"$err" 2>&1 || { cat "$err" >&2; exit 1; }; }

# The CA: self-signed, allowed to sign certificates and nothing else.
run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 -subj "/CN=switchboard provider-mock CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"

# The server: every official provider host agentd's adapters know (the
# mock tells them apart by Host) + loopback, TLS server use only.
san="DNS:api.openai.com,DNS:api.anthropic.com,DNS:*.openai.azure.com"
san+=",DNS:api.deepseek.com,DNS:dashscope.aliyuncs.com,DNS:dashscope-intl.aliyuncs.com"
san+=",DNS:generativelanguage.googleapis.com,DNS:*.googleapis.com"
san+=",DNS:bedrock-runtime.us-east-1.amazonaws.com"
san+=",DNS:localhost,IP:127.0.0.1"
for n in "$@"; do san+=",DNS:$n"; done
run openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=api.openai.com"
cat >"$d/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
authorityKeyIdentifier=keyid
EXT
run openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -CAcreateserial -CAserial "$d/ca.srl" -days 30 -extfile "$d/server.ext" -out "$d/server.pem"
chmod 600 "$d/ca.key" "$d/server.key"
