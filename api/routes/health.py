from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/api/health")
def health(engine: EngineDep) -> dict:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "database": engine.dialect.name}
