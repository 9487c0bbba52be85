"""The guest's screen: the kiosk page (`GET /`), its static files (`/kiosk/...`), the per-job share page for a
phone (`/share/<token>`), the technician's status page (`/status`) and the Chromium launcher (`edge-agent kiosk`).

The page is plain HTML/CSS/JS shipped as package data (no build step, no CDN: a booth may be offline). It talks
to the same local API as every other client: `/api/state`, `/api/events` (SSE), `/api/jobs/<id>`,
`POST /api/capture` with the same-origin proof header.
"""
