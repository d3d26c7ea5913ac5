// Package fakeanthropic is a scripted fake of the Anthropic Messages API for
// tests that drive the real Claude Code CLI (or any Messages API client)
// offline.
//
// A test starts a [Server] with a script of [Turn]s and points the client at
// Server.URL (ANTHROPIC_BASE_URL). The n-th POST /v1/messages request that
// no [Rule] matches is answered with the n-th turn: streamed as server-sent
// events when the request asks for "stream": true, as one JSON message
// otherwise. Every request is recorded with its parsed model, system
// prompt, messages and tools ([Server.Requests]), so the test can check
// what the client sent back (tool_result blocks, the system prompt, the
// model). A Turn's Gate holds its answer until the test releases it, and
// Options.EventDelay spaces the events of a streamed answer, so that a test
// can watch a run progress.
//
// Wire shapes (from the Messages API streaming documentation): a streamed
// answer is message_start (the message with empty content and the input
// usage), ping, then per content block content_block_start,
// content_block_delta events (text_delta, or input_json_delta carrying the
// tool input as partial JSON) and content_block_stop, then message_delta
// (stop_reason and the cumulative usage) and message_stop. Errors are
// {"type":"error","error":{"type":…,"message":…}} with the turn's status.
// POST /v1/messages/count_tokens gets a rough count; HEAD /api/hello gets
// 200; any other path a 404 not_found_error.
//
// # What Claude Code 2.1.332 sends
//
// Run as `claude -p` with the environment of testenv.ClaudeEnv (a temporary
// HOME, ANTHROPIC_API_KEY=test, DISABLE_TELEMETRY=1, DISABLE_AUTOUPDATER=1,
// CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1), the CLI sends only the
// requests of its agent loop: one streamed POST /v1/messages?beta=true per
// turn, model "claude-opus-5-5" unless --model is given, max_tokens 128000,
// adaptive thinking, its tools (Agent, Bash, Edit, Read, Write, …) and a
// system prompt in several text blocks (with --append-system-prompt at the
// end). There are no title, topic or quota side requests in print mode, so
// a plain script works; Rules are there for clients and versions that do
// send them. Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC it first
// sends HEAD /api/hello. When a streamed request gets an error answer, the
// CLI sends the same request again without streaming, which takes the next
// turn. Tool paths may be relative to the CLI's working directory. Bash
// calls are refused ("This command requires approval", is_error) under
// --permission-mode acceptEdits unless --allowedTools Bash is given;
// bypassPermissions is refused when running as root unless IS_SANDBOX=1.
// One scripted Read, Edit, answer run takes about 3 s.
//
// # The CLI's stream-json output
//
// With --output-format stream-json --verbose the CLI writes one JSON object
// a line, each as it happens (a test holds a turn at its gate and sees the
// earlier lines arrive). For the script FixFile builds, the lines are, in
// order: system/init; assistant (text); assistant (tool_use Read); user
// (tool_result); assistant (text); assistant (tool_use Edit); user
// (tool_result); assistant (text); result/success. Every line has
// "session_id"; assistant and user lines also "uuid", "timestamp" and
// "parent_tool_use_id" (null outside subagents).
//
//	{"type":"system","subtype":"init","cwd":…,"session_id":…,"model":"claude-opus-5-5",
//	 "permissionMode":"acceptEdits","tools":["Task","Bash","Edit","Read",…],
//	 "mcp_servers":[],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.332",…}
//
//	{"type":"assistant","message":{"id":"msg_…","type":"message","role":"assistant","model":…,
//	 "content":[ONE block],"stop_reason":null,"usage":{…}},"parent_tool_use_id":null,…}
//
// An assistant message becomes one line per content block, all with the same
// message.id; the block is {"type":"text","text":…} or
// {"type":"tool_use","id":"toolu_…","name":"Read","input":{…}}. The usage on
// these lines is the message_start usage (output_tokens 1), not the turn's
// total: take totals from the result line. An API failure shows as an
// assistant line with "error", "is_api_error_message":true and
// "api_error_status".
//
//	{"type":"user","message":{"role":"user","content":[{"type":"tool_result",
//	 "tool_use_id":"toolu_…","content":"…"}]},
//	 "tool_use_result":…,"tool_result_meta":[{"id":"toolu_…","permission_decision":{…}}],…}
//
// The tool_result block has "is_error":true when the call failed or was
// refused. Its "content" is the text the model gets back (for Read,
// numbered lines);
// "tool_use_result" is the tool's own structured result (Read:
// {"type":"text","file":{"filePath","content","numLines",…}}; Edit:
// {"filePath","oldString","newString","originalFile","structuredPatch",…};
// a refused call: the string "Error: …").
//
//	{"type":"result","subtype":"success","is_error":false,"result":"<final text>",
//	 "num_turns":3,"duration_ms":…,"duration_api_ms":…,"total_cost_usd":…,
//	 "usage":{"input_tokens":300,"output_tokens":60,"cache_read_input_tokens":0,…},
//	 "modelUsage":{"<model>":{"inputTokens":…,"costUSD":…}},"permission_denials":[…],
//	 "stop_reason":"end_turn","terminal_reason":"completed","session_id":…}
//
// The usage sums the fake's message_delta usage over the turns and the cost
// is the CLI's price for it. When the API fails, the result line still has
// subtype "success" but "is_error":true, "terminal_reason":"api_error" and
// "api_error_status", and the CLI exits with status 1. --output-format json
// prints only the result object.
package fakeanthropic
