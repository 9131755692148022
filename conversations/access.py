"""Who may read and erase what the platform keeps about a mentee (their memory
facts and conversation transcripts): one rule for the v2 API and the admin.

The integration acting for the mentee (the ion-mentoring front end's token is
in the Integrations group) and the privacy officers (who answer access and
erasure requests) have `conversations.access_mentee_data`; product managers,
who may send data and read aggregate results, do not. Superusers pass, as
everywhere in Django."""

from typing import Any

from common.permissions import has_perm

MENTEE_DATA_PERMISSION = "conversations.access_mentee_data"


def may_access_mentee_data(user: Any) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.has_perm(MENTEE_DATA_PERMISSION)
    )


CanAccessMenteeData = has_perm(MENTEE_DATA_PERMISSION)
