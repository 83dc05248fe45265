"""The Job controller: pods until completions, back-off after failures, deadlines, TTL."""

from __future__ import annotations

import copy
import math

from sandbox.kube.controllers.base import ClusterBase
from sandbox.kube.kinds.base import parse_time
from sandbox.kube.objects import JSON
from sandbox.kube.store import rfc3339


class JobController(ClusterBase):
    """Job status, conditions and pods, as batch/v1's controller keeps them."""

    def _reconcile_jobs(self) -> bool:
        changed = False
        for job in self.items("jobs"):
            if any(
                c["type"] in ("Complete", "Failed") and c["status"] == "True"
                for c in job["status"].get("conditions") or []
            ):
                continue
            changed = self._reconcile_job(job) or changed
        return changed

    def _reconcile_job(self, job: JSON) -> bool:
        spec = job["spec"]
        uid = job["metadata"]["uid"]
        terminal = self._job_terminal.setdefault(uid, {})
        pods = self._owned_pods(job)
        active = []
        for pod in pods:
            phase = pod["status"]["phase"]
            pod_uid = pod["metadata"]["uid"]
            if phase in ("Succeeded", "Failed"):
                if pod_uid not in terminal and phase == "Failed":
                    self._job_last_failure[uid] = self.now
                    failures = sum(1 for p in terminal.values() if p == "Failed") + 1
                    delay = min(360.0, self.timings.backoff * 2 ** (failures - 1))
                    self._at(self.now + delay, lambda: None)
                terminal[pod_uid] = phase
            else:
                active.append(pod)
        succeeded = sum(1 for phase in terminal.values() if phase == "Succeeded")
        failed = sum(1 for phase in terminal.values() if phase == "Failed")
        status = copy.deepcopy(job["status"])
        if "startTime" not in status and not spec.get("suspend"):
            status["startTime"] = rfc3339(self.now)
            deadline = spec.get("activeDeadlineSeconds")
            if deadline:
                self._at(self.now + float(deadline), lambda: None)
        started = parse_time(status["startTime"]) if "startTime" in status else self.now
        deadline = spec.get("activeDeadlineSeconds")
        conditions: list[JSON] = []
        if deadline and self.now >= started + float(deadline):
            conditions = self._job_failed(
                "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        elif succeeded >= spec.get("completions", 1):
            conditions = [
                self._condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                self._condition(
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            ]
            status["completionTime"] = rfc3339(self.now)
            self.record_event(job, "Normal", "Completed", "Job completed", "job-controller")
        elif failed > spec.get("backoffLimit", 6):
            conditions = self._job_failed(
                "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        elif not spec.get("suspend"):
            backoff_until = self._job_last_failure.get(uid, -math.inf) + min(
                360.0, self.timings.backoff * 2 ** max(0, failed - 1)
            )
            wanted = min(spec.get("parallelism", 1), spec.get("completions", 1) - succeeded)
            while len(active) < wanted and (not failed or self.now >= backoff_until):
                active.append(self._create_job_pod(job))
        if conditions and conditions[-1]["type"] == "Failed":
            self.record_event(
                job, "Warning", conditions[-1]["reason"], conditions[-1]["message"],
                "job-controller",
            )  # fmt: skip
        if conditions:
            for pod in active:
                self._delete_pod(pod)
            active = []
            status["conditions"] = conditions
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                self._at(self.now + float(ttl), lambda: self._expire_job(uid))
        status["active"] = len(active)
        status["ready"] = sum(1 for pod in active if pod["status"]["phase"] == "Running")
        status["succeeded"] = succeeded
        status["failed"] = failed
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        for field in ("active", "succeeded", "failed"):
            if not status[field]:
                status.pop(field)
        if status == job["status"]:
            return False
        updated = copy.deepcopy(job)
        updated["status"] = status
        return self._put("jobs", updated)

    def _expire_job(self, uid: str) -> None:
        """ttlSecondsAfterFinished: the TTL controller deletes the job and its pods."""
        for job in self.items("jobs"):
            if job["metadata"]["uid"] == uid:
                meta = job["metadata"]
                self.delete("jobs", meta["namespace"], meta["name"], "Background")

    def _job_failed(self, reason: str, message: str) -> list[JSON]:
        return [
            self._condition("FailureTarget", "True", reason, message),
            self._condition("Failed", "True", reason, message),
        ]

    def _create_job_pod(self, job: JSON) -> JSON:
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata") or {}
        annotations = {**(meta.get("annotations") or {}), "batch.kubernetes.io/job-tracking": ""}
        labels = meta.get("labels") or {}
        return self._create_owned_pod(job, template["spec"], labels, annotations, "job-controller")
