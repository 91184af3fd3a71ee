#!/bin/bash
# Per-thread CPU of ONE bench cluster (the validators spawned by the bench process PID), over S
# seconds, in clock ticks (1 tick = 10 ms) summed over the validators. Node names almost every
# thread "node", so threads are classed by creation order (tid order within each process):
#   main = the JS main thread; v8 = the V8 platform pool (GC helpers, concurrent compilation: the
#   4 threads created right after the signal thread; --v8-pool-size); uv = the libuv thread pool
#   (fs: fdatasync, RocksDB callbacks' work; 4 threads, lazily created); rocksdb:* = RocksDB's own;
#   worker = worker_threads (verify pool, exec workers) and everything after.
# Other clusters on the box are ignored.
#   bash bench/threads.sh BENCH_PID SECONDS > out.txt
bench=$1; secs=$2
tmp=$(mktemp -d)
pids() { ps -o pid= --ppid "$bench" | tr -d ' '; }
snap() {
  for p in $(pids); do
    i=0
    for t in $(ls /proc/$p/task | sort -n); do
      f=/proc/$p/task/$t; [ -r "$f/stat" ] || continue
      n=$(tr ' ' '_' < "$f/comm"); s=$(awk '{print $14+$15}' "$f/stat" 2>/dev/null)
      if [ "$i" -eq 0 ]; then r=main; elif [ "$n" != node ]; then r=$n; elif [ "$i" -le 1 ]; then r=signal;
      elif [ "$i" -le 5 ]; then r=v8; elif [ "$i" -le 6 ]; then r=t6; elif [ "$i" -le 10 ]; then r=uv; else r=worker; fi
      [ -n "$s" ] && echo "$p/$t $r $s"; i=$((i + 1))
    done
  done
}
snap | sort > "$tmp/a"; sleep "$secs"; snap | sort > "$tmp/b"
echo "validators $(pids | wc -l) seconds $secs"
join "$tmp/a" "$tmp/b" | awk '{d=$5-$3; by[$2]+=d; if ($2!="main") oth+=d; tot+=d} END {for (k in by) printf "%-14s %6d\n", k, by[k]; printf "OTHER %d\nTOTAL %d\n", oth, tot}' | sort -k2 -n -r
rm -rf "$tmp"
