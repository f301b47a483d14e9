set terminal pngcairo size 1400,840 font 'DejaVu Sans,10'
set termoption noenhanced
set output '/tmp/bench15b/ratios.png'
set multiplot layout 2,1
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set datafile missing '?'
set key outside right top
set grid ytics
set yrange [0:*]
set xtics rotate by -20
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2 lc rgb 'black' front
set title "http: ours (io_uring) / peer, throughput (>1: ours faster)"
plot for [i=2:3] '/tmp/bench15b/chart_http_rate.dat' using i:xtic(1) title columnheader
set title "http: peer / ours (io_uring), CPU per 100k (>1: ours cheaper)"
plot for [i=2:3] '/tmp/bench15b/chart_http_cpu.dat' using i:xtic(1) title columnheader
unset multiplot
