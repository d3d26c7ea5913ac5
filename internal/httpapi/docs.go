package httpapi

import (
	"net/http"

	"github.com/swaggest/swgui/v5emb"
)

// mountDocs serves Swagger UI at /docs. Its assets (JavaScript, CSS) are
// embedded in the github.com/swaggest/swgui module, so the page works
// offline and the repository holds no copy of them.
func mountDocs(mux *http.ServeMux) {
	h := v5emb.New("Agent orchestrator API", "/openapi.json", "/docs/")
	mux.Handle("GET /docs", h)
	mux.Handle("GET /docs/", h)
}
