-- deflect: applies one tenant's batch of deflection events atomically.
--
-- Dedupe (the idempotency marker), the raw stream, the counters and the session's
-- attribution state change in one script, so an event is counted exactly once or not at
-- all however often a batch is retried or replayed from the spool. Every key name comes
-- in KEYS, built by src/events/keys.rs; this script builds none (session state stores
-- the names it was given, for later events of the session).
--
-- KEYS[1]            the tenant's raw event stream
-- KEYS[dk .. dk+13]  a day's keys, in DayKeys::in_script_order (see the offsets below)
-- KEYS[sk]           a session's hash;  KEYS[seen] an event's idempotency marker
-- ARGV[1] stream MAXLEN (approximate), ARGV[2] marker TTL (s), ARGV[3] session TTL (s),
-- ARGV[4] JSON array of events (src/events/store.rs, ScriptEvent).
-- Returns one integer per event: 1 counted, 0 duplicate.

local stream = KEYS[1]
local stream_max_len = ARGV[1]
local seen_ttl = tonumber(ARGV[2])
local session_ttl = tonumber(ARGV[3])
local events = cjson.decode(ARGV[4])

local COUNTERS, L_SHOWN, L_OPENED, L_HELPFUL, L_NOT_HELPFUL = 0, 1, 2, 3, 4
local L_DEFLECTIONS, L_REVERTED, L_SUBMITTED_AFTER, L_POST_SUBMISSION = 5, 6, 7, 8
local L_SHOWN_FIRST, L_SHOWN_SECOND, L_DEFLECTIONS_FIRST, L_DEFLECTIONS_SECOND = 9, 10, 11, 12
local GAPS_UNANSWERED, GAPS_SUBMITTED = 13, 14
local MAX_GAP_DRAFTS = 10000

local function day_key(event, offset)
  return KEYS[event.dk + offset]
end

local function milliseconds(value)
  return string.format('%.0f', value)
end

-- An engagement is stored as field "eng:<lesson>" = "<ts>:<sequence>"; the sequence
-- orders engagements of the same millisecond by arrival.
local function engagement_order(value)
  local separator = string.find(value, ':', 1, true)
  return tonumber(string.sub(value, 1, separator - 1)), tonumber(string.sub(value, separator + 1))
end

local function engaged_lessons(session)
  local fields = redis.call('HGETALL', session)
  local lessons = {}
  for index = 1, #fields, 2 do
    if string.sub(fields[index], 1, 4) == 'eng:' then
      local ts, sequence = engagement_order(fields[index + 1])
      table.insert(lessons, {lesson = string.sub(fields[index], 5), ts = ts, sequence = sequence})
    end
  end
  return lessons
end

local function last_engaged_until(lessons, until_ts)
  local best = nil
  for _, engagement in ipairs(lessons) do
    if engagement.ts <= until_ts then
      if best == nil or engagement.ts > best.ts
          or (engagement.ts == best.ts and engagement.sequence > best.sequence) then
        best = engagement
      end
    end
  end
  return best
end

-- A session keeps, per lesson shown, "shown:<lesson>" = "p<position>": the lesson's
-- position (1 = first) in the session's first answer that showed it. Deflections are also
-- counted by that position (first, second; lower ones only in the total), so ranking
-- feedback can tell a lesson that deflects because it is good from one that deflects
-- because it is usually shown first. Returns the per-lesson hash of deflections at the
-- lesson's position among `first_key` and `second_key` (a day's), or nil (third or lower,
-- never shown in the session, or shown before positions were kept).
local function position_key(session, lesson, first_key, second_key)
  local shown = redis.call('HGET', session, 'shown:' .. lesson)
  if not shown or string.sub(shown, 1, 1) ~= 'p' then
    return nil
  end
  local position = tonumber(string.sub(shown, 2))
  if position == 1 then
    return first_key
  elseif position == 2 then
    return second_key
  end
  return nil
end

local function count_at_position(session, lesson, first_key, second_key, delta)
  local key = position_key(session, lesson, first_key, second_key)
  if key then
    redis.call('HINCRBY', key, lesson, delta)
  end
end

local function add_gap(key, draft, delta)
  local score = tonumber(redis.call('ZINCRBY', key, delta, draft))
  if score <= 0 then
    redis.call('ZREM', key, draft)
  elseif delta > 0 and redis.call('ZCARD', key) > MAX_GAP_DRAFTS + 1000 then
    redis.call('ZREMRANGEBYRANK', key, 0, 999)
  end
end

-- A session counts once among the unanswered drafts, with its latest such draft.
local function withdraw_unanswered_gap(session)
  local gap = redis.call('HMGET', session, 'gap_key', 'gap_draft')
  if gap[1] then
    add_gap(gap[1], gap[2], -1)
    redis.call('HDEL', session, 'gap_key', 'gap_draft')
  end
end

-- Deflects a session that ended (resolved or abandoned) without a ticket after engaging
-- with a lesson, crediting the lesson engaged last before the end; or moves the credit
-- when a late event shows another lesson was engaged last.
local function attribute(session, event)
  local state = redis.call('HMGET', session, 'submitted', 'end_ts', 'end_counters',
    'end_deflections', 'end_reverted', 'deflected', 'credit', 'credit_deflections',
    'end_deflections_first', 'end_deflections_second', 'credit_first', 'credit_second')
  if state[1] or not state[2] then
    return
  end
  local end_ts = tonumber(state[2])
  local lessons = engaged_lessons(session)
  local best = last_engaged_until(lessons, end_ts)
  if best == nil then
    return
  end
  if state[6] ~= '1' then
    redis.call('HINCRBY', state[3], 'deflections', 1)
    redis.call('HINCRBY', state[4], best.lesson, 1)
    count_at_position(session, best.lesson, state[9], state[10], 1)
    redis.call('HSET', session, 'deflected', '1', 'credit', best.lesson,
      'credit_counters', state[3], 'credit_deflections', state[4], 'credit_reverted', state[5])
    if state[9] then
      redis.call('HSET', session, 'credit_first', state[9], 'credit_second', state[10])
    end
    local engaged = {}
    for _, engagement in ipairs(lessons) do
      if engagement.ts <= end_ts then
        table.insert(engaged, engagement.lesson)
      end
    end
    redis.call('XADD', stream, 'MAXLEN', '~', stream_max_len, '*', 'type', 'deflection',
      'session_id', event.session_id, 'lesson_id', best.lesson,
      'engaged_lessons', table.concat(engaged, ','), 'ts', state[2])
  elseif state[7] ~= best.lesson then
    redis.call('HINCRBY', state[8], state[7], -1)
    redis.call('HINCRBY', state[8], best.lesson, 1)
    count_at_position(session, state[7], state[11], state[12], -1)
    count_at_position(session, best.lesson, state[11], state[12], 1)
    redis.call('HSET', session, 'credit', best.lesson)
  end
end

local function record_in_stream(event)
  local entry = {'type', event.type, 'event_id', event.id, 'session_id', event.session_id,
    'ts', milliseconds(event.ts)}
  local optional = {'lesson_id', event.lesson, 'suggestion_id', event.suggestion_id,
    'reason', event.reason, 'channel', event.channel, 'locale', event.locale}
  for index = 1, #optional, 2 do
    local value = optional[index + 1]
    if type(value) == 'string' then
      table.insert(entry, optional[index])
      table.insert(entry, value)
    end
  end
  if event.lessons and #event.lessons > 0 then
    table.insert(entry, 'lesson_ids')
    table.insert(entry, table.concat(event.lessons, ','))
  end
  if event.holdout then
    table.insert(entry, 'holdout')
    table.insert(entry, '1')
  end
  if event.after then
    table.insert(entry, 'after_submission')
    table.insert(entry, '1')
  end
  redis.call('XADD', stream, 'MAXLEN', '~', stream_max_len, '*', unpack(entry))
end

-- Events about the lessons posted into a ticket already submitted ("while you wait"),
-- whose session is the ticket: counted apart from the widget's sessions, so they never
-- change its deflection rate. A ticket the customer resolves from the lessons is a
-- post-submission deflection, once, credited to the lesson opened last (if any).
local function apply_after_submission(event)
  local session = KEYS[event.sk]
  local counters = day_key(event, COUNTERS)
  local kind = event.type
  if kind == 'suggestions_shown' then
    if redis.call('HSETNX', session, 'post_shown', '1') == 1 then
      redis.call('HINCRBY', counters, 'post_submission_tickets', 1)
    end
  elseif kind == 'lesson_opened' then
    redis.call('HINCRBY', counters, 'post_submission_opened', 1)
    local sequence = redis.call('HINCRBY', session, 'sequence', 1)
    redis.call('HSET', session, 'eng:' .. event.lesson, milliseconds(event.ts) .. ':' .. sequence)
  elseif kind == 'resolved' then
    if redis.call('HSETNX', session, 'post_resolved', '1') == 1 then
      redis.call('HINCRBY', counters, 'post_submission_deflections', 1)
      local best = last_engaged_until(engaged_lessons(session), math.huge)
      local entry = {'type', 'post_submission_deflection', 'session_id', event.session_id,
        'ts', milliseconds(event.ts)}
      if best then
        redis.call('HINCRBY', day_key(event, L_POST_SUBMISSION), best.lesson, 1)
        table.insert(entry, 'lesson_id')
        table.insert(entry, best.lesson)
      end
      redis.call('XADD', stream, 'MAXLEN', '~', stream_max_len, '*', unpack(entry))
    end
  end
  redis.call('EXPIRE', session, session_ttl)
end

local function apply(event)
  local session = KEYS[event.sk]
  local counters = day_key(event, COUNTERS)
  local kind = event.type
  if kind == 'suggestions_shown' then
    local holdout = event.holdout == true
    redis.call('HINCRBY', counters, holdout and 'holdout_answers' or 'shown', 1)
    if redis.call('HSETNX', session, 'cohort', counters) == 1 then
      if holdout then
        redis.call('HSET', session, 'holdout', '1')
      end
      redis.call('HINCRBY', counters, holdout and 'holdout_sessions' or 'sessions', 1)
      local flags = redis.call('HMGET', session, 'submitted', 'opened')
      if flags[1] then
        redis.call('HINCRBY', counters,
          holdout and 'holdout_submitted_sessions' or 'submitted_sessions', 1)
      end
      if flags[2] and not holdout then
        redis.call('HINCRBY', counters, 'opened_sessions', 1)
      end
    end
    for position, lesson in ipairs(event.lessons or {}) do
      if redis.call('HSETNX', session, 'shown:' .. lesson, 'p' .. position) == 1 then
        redis.call('HINCRBY', day_key(event, L_SHOWN), lesson, 1)
        if position <= 2 then
          redis.call('HINCRBY', day_key(event, position == 1 and L_SHOWN_FIRST or L_SHOWN_SECOND),
            lesson, 1)
        end
      end
    end
    if type(event.draft) == 'string' then
      withdraw_unanswered_gap(session)
      redis.call('HSET', session, 'draft', event.draft)
    end
  elseif kind == 'no_suggestions' then
    redis.call('HINCRBY', counters, 'unanswered', 1)
    if type(event.draft) == 'string' then
      withdraw_unanswered_gap(session)
      add_gap(day_key(event, GAPS_UNANSWERED), event.draft, 1)
      redis.call('HSET', session, 'gap_key', day_key(event, GAPS_UNANSWERED),
        'gap_draft', event.draft)
      redis.call('HDEL', session, 'draft')
    end
  elseif kind == 'lesson_opened' or kind == 'helpful' then
    local is_helpful = kind == 'helpful'
    redis.call('HINCRBY', counters, is_helpful and 'helpful' or 'opened', 1)
    redis.call('HINCRBY', day_key(event, is_helpful and L_HELPFUL or L_OPENED), event.lesson, 1)
    local sequence = redis.call('HINCRBY', session, 'sequence', 1)
    local previous = redis.call('HGET', session, 'eng:' .. event.lesson)
    if not previous or engagement_order(previous) <= event.ts then
      redis.call('HSET', session, 'eng:' .. event.lesson,
        milliseconds(event.ts) .. ':' .. sequence)
    end
    if not is_helpful and redis.call('HSETNX', session, 'opened', '1') == 1 then
      local cohort = redis.call('HMGET', session, 'cohort', 'holdout')
      if cohort[1] and not cohort[2] then
        redis.call('HINCRBY', cohort[1], 'opened_sessions', 1)
      end
    end
    attribute(session, event)
  elseif kind == 'not_helpful' then
    redis.call('HINCRBY', counters, 'not_helpful', 1)
    redis.call('HINCRBY', day_key(event, L_NOT_HELPFUL), event.lesson, 1)
  elseif kind == 'resolved' or kind == 'ticket_abandoned' then
    redis.call('HINCRBY', counters, kind == 'resolved' and 'resolved' or 'abandoned', 1)
    local end_ts = tonumber(redis.call('HGET', session, 'end_ts'))
    if end_ts == nil or event.ts > end_ts then
      redis.call('HSET', session, 'end_ts', milliseconds(event.ts), 'end_counters', counters,
        'end_deflections', day_key(event, L_DEFLECTIONS),
        'end_reverted', day_key(event, L_REVERTED),
        'end_deflections_first', day_key(event, L_DEFLECTIONS_FIRST),
        'end_deflections_second', day_key(event, L_DEFLECTIONS_SECOND))
    end
    attribute(session, event)
  elseif kind == 'ticket_submitted' then
    -- Once per session: the widget and the helpdesk's webhook may both report it.
    if redis.call('HSETNX', session, 'submitted', '1') == 1 then
      redis.call('HINCRBY', counters, 'submitted', 1)
      local state = redis.call('HMGET', session, 'cohort', 'holdout', 'deflected', 'credit',
        'credit_counters', 'credit_deflections', 'credit_reverted', 'draft', 'credit_first',
        'credit_second')
      if state[1] then
        redis.call('HINCRBY', state[1],
          state[2] and 'holdout_submitted_sessions' or 'submitted_sessions', 1)
      end
      for _, engagement in ipairs(engaged_lessons(session)) do
        redis.call('HINCRBY', day_key(event, L_SUBMITTED_AFTER), engagement.lesson, 1)
      end
      if state[3] == '1' then
        redis.call('HINCRBY', state[5], 'deflections', -1)
        redis.call('HINCRBY', state[5], 'deflections_reverted', 1)
        redis.call('HINCRBY', state[6], state[4], -1)
        redis.call('HINCRBY', state[7], state[4], 1)
        count_at_position(session, state[4], state[9], state[10], -1)
        redis.call('HSET', session, 'deflected', 'reverted')
        redis.call('XADD', stream, 'MAXLEN', '~', stream_max_len, '*',
          'type', 'deflection_reverted', 'session_id', event.session_id,
          'lesson_id', state[4], 'ts', milliseconds(event.ts))
      end
      if state[8] and state[1] and not state[2] then
        add_gap(day_key(event, GAPS_SUBMITTED), state[8], 1)
      end
    end
  end
  redis.call('EXPIRE', session, session_ttl)
end

local results = {}
for index, event in ipairs(events) do
  if redis.call('SET', KEYS[event.seen], '1', 'NX', 'EX', seen_ttl) then
    record_in_stream(event)
    if event.after then
      apply_after_submission(event)
    else
      apply(event)
    end
    results[index] = 1
  else
    results[index] = 0
  end
end
return results
