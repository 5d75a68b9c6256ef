"""Sign-in for API clients (OAuth2 password flow, bearer tokens), sign-out, and who am I."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.actor import client_address, credentials
from api.deps import DbDep, SettingsDep
from api.policy import PUBLIC, AnyActor
from api.ratelimit import rate_limited
from domain.auth import service as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds


class MeRead(BaseModel):
    user_id: str
    name: str
    role: str
    tutor_id: str | None
    student_id: str | None


@router.post("/token", response_model=TokenRead, dependencies=[Depends(PUBLIC), Depends(rate_limited("login", "login_rate_limit"))],
             responses={401: {"description": "Wrong email or password"}, 429: {"description": "Too many attempts"}},
             summary="Exchange email (as username) and password for a bearer token")
def token(request: Request, db: DbDep, settings: SettingsDep,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenRead:
    user = auth_service.authenticate(db, form.username, form.password)
    if user is None:
        # One answer for unknown email, wrong password and inactive account: nothing to enumerate.
        raise HTTPException(status_code=401, detail="Wrong email or password.", headers={"WWW-Authenticate": "Bearer"})
    issued = auth_service.issue(db, user, kind=auth_service.BEARER, minutes=settings.access_token_minutes,
                                source=client_address(request))
    return TokenRead(access_token=issued.token, expires_in=settings.access_token_minutes * 60)


@router.post("/logout", status_code=204, summary="Revoke the token this request carries")
def logout(request: Request, db: DbDep, actor: AnyActor) -> None:
    found = credentials(request)
    if found is not None:
        auth_service.revoke(db, found[1])


@router.get("/me", response_model=MeRead, summary="The signed-in account")
def me(actor: AnyActor) -> MeRead:
    return MeRead(user_id=actor.user_id, name=actor.name, role=actor.role, tutor_id=actor.tutor_id,
                  student_id=actor.student_id)
