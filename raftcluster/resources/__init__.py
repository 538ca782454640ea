"""Resource types: what a group's resources are, and how a node starts, stops and
monitors them (docs/groups.md, "Resource types").

kind        `ResourceKind` (the protocol every type implements), `ResourceContext` (what
            one action is given), `ResourceFailed` and its `Severity`
ocf         `OcfKind`: resources run by OCF resource agents (`agent = "ocf:heartbeat:Dummy"`),
            `meta_data` / `parse_meta_data`: an agent's description
"""
