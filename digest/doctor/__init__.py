"""`digest doctor`: the sender domain's SPF, DKIM, DMARC and MX records and the one-click
unsubscribe setting, each judged against Gmail's and Yahoo's bulk-sender rules. One module per
rule; :func:`run_doctor` runs them all."""

from digest.doctor.report import Finding, Fix, Verdict
from digest.doctor.run import DoctorReport, run_doctor

__all__ = ["DoctorReport", "Finding", "Fix", "Verdict", "run_doctor"]
