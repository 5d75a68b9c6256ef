"""Rule administration: versioned, validated rule sets edited by admins (drafts, publish, rollback, shadow, dry run)."""
