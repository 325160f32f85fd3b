"""A local two-node Ray cluster made with Ray's own cluster utilities (a head and one more node, two logical CPUs
each, no dashboard, small object stores), for the Ray pool tests (tests/test_ray_pool.py, tests/test_robotwin_ray.py).
"""

from __future__ import annotations

import psutil
import ray

NODE = {"num_cpus": 2, "object_store_memory": 80 * 1024**2}  # logical CPUs: room for two pools at once


class ClusterHandle:
    """The module's cluster and every process it started (its nodes' processes and their children: workers)."""

    def __init__(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, connect=True, head_node_args={**NODE, "include_dashboard": False})
        self.cluster.add_node(**NODE)
        self.cluster.wait_for_nodes()
        self.down = False

    def processes(self) -> list[psutil.Process]:
        """The cluster's processes now: each node's own (gcs, raylet, agents, monitors) and their descendants."""
        found: dict[int, psutil.Process] = {}
        for node in self.cluster.list_all_nodes():
            for infos in node.all_processes.values():
                for info in infos:
                    try:
                        root = psutil.Process(info.process.pid)
                        found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
                    except psutil.NoSuchProcess:
                        continue
        return list(found.values())

    def shutdown(self) -> None:
        if not self.down:
            self.down = True
            ray.shutdown()  # the driver first: the cluster refuses to remove the node it is connected to
            self.cluster.shutdown()
