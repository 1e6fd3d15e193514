// Following one generation until it ends: the event stream (GET /v1/generations/events,
// contract C2) when the browser can open it, else polling GET /v1/generations/{id} with
// back-off (1 s doubling to 8 s). Either way the full generation is fetched once it is final,
// for its outputs.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, currentTeam, unwrap } from "../../api/client";
import { TERMINAL, type Generation } from "./catalogue";

export interface Tracked {
  generation: Generation | null;
  status: string | null;
  progress: number | null;
  cancel(): Promise<void>;
}

interface StreamEvent { id: string; status: string; progress: number | null }

async function fetchGeneration(id: string): Promise<Generation> {
  return unwrap(await api.GET("/v1/generations/{generation_id}",
                              { params: { path: { generation_id: id } } }));
}

export function useGeneration(id: string | null, onFinished?: (g: Generation) => void): Tracked {
  const [generation, setGeneration] = useState<Generation | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const finished = useRef(onFinished);
  finished.current = onFinished;

  useEffect(() => {
    if (id === null) return;
    let stopped = false;
    let timer: number | undefined;
    let source: EventSource | null = null;
    setGeneration(null);
    setStatus("queued");
    setProgress(null);

    const finish = async () => {
      const final = await fetchGeneration(id);
      if (stopped) return;
      stopped = true;
      source?.close();
      setGeneration(final);
      setStatus(final.status);
      finished.current?.(final);
    };

    const poll = (delay: number) => {
      timer = window.setTimeout(() => {
        void fetchGeneration(id).then((g) => {
          if (stopped) return;
          setStatus(g.status);
          if (TERMINAL.has(g.status)) void finish();
          else poll(Math.min(delay * 2, 8000));
        }, () => { if (!stopped) poll(Math.min(delay * 2, 8000)); });
      }, delay);
    };

    if (typeof EventSource === "undefined") {
      poll(1000);
    } else {
      const team = currentTeam();
      const url = `/v1/generations/events${team ? `?team_id=${encodeURIComponent(team)}` : ""}`;
      source = new EventSource(url, { withCredentials: true });
      let opened = false;
      source.onopen = () => {
        opened = true;
        // Whatever happened before the stream opened: read it once.
        void fetchGeneration(id).then((g) => {
          if (stopped) return;
          setStatus(g.status);
          if (TERMINAL.has(g.status)) void finish();
        });
      };
      source.addEventListener("generation", (event) => {
        const data = JSON.parse((event as MessageEvent<string>).data) as StreamEvent;
        if (data.id !== id || stopped) return;
        setStatus(data.status);
        setProgress(data.progress);
        if (TERMINAL.has(data.status)) void finish();
      });
      source.onerror = () => {
        // No stream (or it broke before opening): fall back to polling. A stream that had
        // opened reconnects by itself.
        if (!opened && !stopped) {
          source?.close();
          poll(1000);
        }
      };
    }
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      source?.close();
    };
  }, [id]);

  const cancel = useCallback(async () => {
    if (id === null) return;
    const answer = unwrap(await api.POST("/v1/generations/{generation_id}/cancel",
                                          { params: { path: { generation_id: id } } }));
    setStatus(answer.status);
    if (TERMINAL.has(answer.status)) {
      setGeneration(answer);
    }
  }, [id]);

  return { generation, status, progress, cancel };
}
