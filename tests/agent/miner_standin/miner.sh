#!/bin/sh
set -eu
say() { echo "miner: $* (GPUs ${WORLDLAND_MINING_GPUS:-none})" | tee -a /data/miner.log; }
trap 'say "stopping on SIGTERM"; exit 0' TERM
say "started"
while :; do
  sleep 1 &
  wait $!
done
