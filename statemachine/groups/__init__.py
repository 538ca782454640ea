"""The cluster service's replicated state: nodes, resource groups, ownership, events.

messages    the part's commands, queries, results and events (tags 300-359)
"""
