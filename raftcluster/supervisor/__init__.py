"""A node's processes: the supervisor that starts and reaps them, and the watchdog that
kills them when the node's lease ends (docs/supervisor.md).

children    `Supervisor` (spawn, run_command, stop, kill_key), `Child`, `ExitStatus`,
            `Completed`, `SpawnFailed`
proctable   the processes of a session, found in /proc
watchdog    the watchdog's protocol and the node's side of it, `Watchdog`
watchdog_process
            the watchdog process itself (standard library only, run by its path)
"""
