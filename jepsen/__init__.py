"""jepsen: the SSH-driven test harness (`python -m jepsen run / hosts / analyze / serve`).

Shaped like Jepsen: independent DB, Client, Nemesis, Generator and Checker parts composed
into a test. The foundation layers are `nodes` (node list parsing), `remote` (SSH exec and
SFTP through paramiko), `hosts` (local hosts as network namespaces with their own sshd),
`grudges` and `net` (partitions with iptables) and `control` (daemons, signals, file faults).
"""
