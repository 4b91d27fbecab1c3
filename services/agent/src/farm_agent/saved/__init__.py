"""What the agent keeps for tenants in the storage service besides artifacts.

Visual baselines and the comparisons of screenshots against them (`diff`, `capture`,
`compare`), saved browser profiles (`profiles`), the storage calls for both
(`client`), and `keeper`, which stores everything a task or command produced.
"""
