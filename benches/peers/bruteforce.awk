# SSH brute force, exactly: >= N "Failed password" lines from one address within W seconds
# of event time (the trailing window (t - W, t]), one alert per burst (a new one only after
# the address was quiet for W). Reads RFC 3164 lines: "<38>Nov 24 00:00:01 host sshd[1]: ...".
BEGIN {
    N = 6; W = 600
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mn, " ")
    split("0 31 59 90 120 151 181 212 243 273 304 334", cum, " ")
    for (i = 1; i <= 12; i++) mon[mn[i]] = i
}
$5 ~ /^sshd\[/ && $6 == "Failed" && $7 == "password" {
    ip = ""
    for (i = 9; i < NF; i++) if ($i == "from") { ip = $(i + 1); break }
    if (ip == "") next
    split($3, hms, ":")
    t = (cum[mon[substr($1, index($1, ">") + 1)]] + $2) * 86400 + hms[1] * 3600 + hms[2] * 60 + hms[3]
    c = ++n[ip]
    ring[ip, c % N] = t                      # the last N times, oldest at (c + 1) % N
    fire = c >= N && t - ring[ip, (c + 1) % N] < W
    if (fire && !(ip in open && t - last[ip] < W)) print ip
    if (fire) open[ip] = 1
    last[ip] = t
}
