module padlock.dev/bench/loadgen

go 1.26
