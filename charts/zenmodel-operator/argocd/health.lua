-- Argo CD health check for zenml.io/ZenModelDeployment (Lua 5.1, run by Argo CD's gopher-lua).
-- Argo CD sets the global `obj` to the live resource; the script returns {status = ..., message = ...}.
--   Healthy:     Ready=True, the operator has observed the current generation, and a canary (if any) has
--                all its replicas available.
--   Degraded:    state Failed, CredentialsReady=False, or Ready=False because of a foreign SeldonDeployment
--                or of a model pod that fails (ModelFetchFailed, ModelLoadFailed, ServingContainerFailed:
--                Seldon would report Creating for ever).
--   Suspended:   state Stopped: scaled to zero replicas on purpose.
--   Progressing: no status yet, a generation not yet observed, Seldon still rolling out (Creating), or a
--                canary not yet fully available.
local hs = {}

local function find_condition(conditions, condition_type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = find_condition(status.conditions, "Ready")
local credentials = find_condition(status.conditions, "CredentialsReady")

if credentials ~= nil and credentials.status == "False" then
  hs.status = "Degraded"
  hs.message = "Credentials: " .. describe(credentials, tostring(credentials.reason))
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason == "SeldonDeploymentConflict" then
  hs.status = "Degraded"
  hs.message = describe(ready, "A SeldonDeployment of the same name is not owned by this ZenModelDeployment")
  return hs
end

local failing_pod_reasons = {ModelFetchFailed = true, ModelLoadFailed = true, ServingContainerFailed = true}
if ready ~= nil and ready.status == "False" and failing_pod_reasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, "A model pod fails: " .. tostring(ready.reason))
  return hs
end

if status.state == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(ready, "The model deployment failed")
  return hs
end

if status.state == "Stopped" then
  hs.status = "Suspended"
  hs.message = describe(ready, "The model is scaled to zero replicas")
  return hs
end

local wants_canary = obj.spec ~= nil and obj.spec.canary ~= nil
local canary = status.canary
if ready ~= nil and ready.status == "True" and wants_canary then
  if canary == nil then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to report the canary predictor"
    return hs
  end
  local available = canary.availableReplicas or 0
  local desired = canary.replicas or 1
  if available < desired then
    hs.status = "Progressing"
    hs.message = "Canary predictor (" .. tostring(canary.uri) .. "): " .. tostring(available) .. "/"
      .. tostring(desired) .. " replicas available"
    return hs
  end
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "The model is served")
  return hs
end

hs.status = "Progressing"
if status.state == "Creating" then
  hs.message = describe(ready, "Seldon Core is rolling out the model")
else
  hs.message = describe(ready, "Waiting for the model to become ready")
end
return hs
