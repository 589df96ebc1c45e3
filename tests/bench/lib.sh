# Shared by the benchmarks: per-call timing from bash, medians, ratios.
# Every figure is measured in this run; nothing is asserted.

# time_calls N CMD…: runs CMD N times; prints each call's wall time in µs.
time_calls() {
	local n=$1 i t0 t1; shift
	for ((i = 0; i < n; i++)); do
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>&1
		t1=$EPOCHREALTIME
		echo $(( (${t1/./} - ${t0/./}) ))
	done
}

# median: of numbers on stdin (one per line)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100); if(i<1)i=1; print a[i]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
