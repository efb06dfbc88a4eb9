#!/bin/sh
set -eu
say() { echo "miner: $* (GPUs ${WORLDLAND_MINING_GPUS:-none})" | tee -a /data/miner.log; }
if [ "${MINER_ON_SIGTERM:-exit}" = ignore ]; then
  trap 'say "ignoring SIGTERM"' TERM
else
  trap 'say "stopping on SIGTERM"; exit 0' TERM
fi
say "started"
while :; do
  sleep 1 &
  wait $! || true  # a trapped signal interrupts the wait; the loop goes on
done
