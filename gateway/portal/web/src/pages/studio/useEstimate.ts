// The live price of what the form would submit: POST /v1/generations/estimate, debounced
// (~400 ms after the last change) and cancelled when the form changes again, so a slow answer
// for old values never overwrites the price of the current ones.
import { useEffect, useState } from "react";
import { api, ApiError, unwrap, type Schemas } from "../../api/client";

export type EstimateState =
  | { state: "idle" }
  | { state: "loading" }
  | { state: "ready"; amount: number }
  | { state: "error"; error: ApiError };

export function useEstimate(body: Schemas["GenerationCreate"] | null, delayMs = 400): EstimateState {
  const [result, setResult] = useState<EstimateState>({ state: "idle" });
  const key = body === null ? null : JSON.stringify(body);

  useEffect(() => {
    if (key === null) {
      setResult({ state: "idle" });
      return;
    }
    const controller = new AbortController();
    setResult({ state: "loading" });
    const timer = window.setTimeout(() => {
      void api.POST("/v1/generations/estimate", {
        body: JSON.parse(key) as Schemas["GenerationCreate"], signal: controller.signal,
      }).then((answer) => {
        const estimate = unwrap(answer);
        setResult({ state: "ready", amount: estimate.amount });
      }, (error: unknown) => {
        if (controller.signal.aborted) return;
        setResult({ state: "error", error: error instanceof ApiError ? error
          : new ApiError(0, "network", String(error)) });
      }).catch((error: unknown) => {
        if (controller.signal.aborted) return;
        setResult({ state: "error", error: error instanceof ApiError ? error
          : new ApiError(0, "network", String(error)) });
      });
    }, delayMs);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [key, delayMs]);

  return result;
}
