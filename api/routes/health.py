from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from api.deps import EngineDep
from api.policy import PUBLIC

router = APIRouter(tags=["health"])


@router.get("/api/health", dependencies=[Depends(PUBLIC)])
def health(engine: EngineDep) -> dict:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "database": engine.dialect.name}
