// A GLB model to turn around: three.js with GLTFLoader and OrbitControls (drag to orbit,
// wheel or pinch to zoom; the arrow keys orbit when the canvas has focus).
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

export default function ModelViewer({ url, label }: { url: string; label: string }) {
  const { t } = useTranslation("viewer");
  const host = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<"loading" | "ready" | "failed">("loading");

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const width = element.clientWidth || 320;
    const height = element.clientHeight || 320;
    const renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
    renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    renderer.setSize(width, height);
    renderer.domElement.tabIndex = 0;
    renderer.domElement.setAttribute("aria-label", label);
    renderer.domElement.setAttribute("role", "img");
    element.appendChild(renderer.domElement);
    const scene = new THREE.Scene();
    scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 2.5));
    const sun = new THREE.DirectionalLight(0xffffff, 2);
    sun.position.set(3, 5, 4);
    scene.add(sun);
    const camera = new THREE.PerspectiveCamera(45, width / height, 0.01, 1000);
    camera.position.set(0, 0, 3);
    const controls = new OrbitControls(camera, renderer.domElement);
    controls.enableDamping = true;
    controls.listenToKeyEvents(renderer.domElement);
    let frame = 0;
    let alive = true;
    new GLTFLoader().load(url, (gltf) => {
      if (!alive) return;
      const box = new THREE.Box3().setFromObject(gltf.scene);
      const size = box.getSize(new THREE.Vector3()).length() || 1;
      gltf.scene.position.sub(box.getCenter(new THREE.Vector3()));
      scene.add(gltf.scene);
      camera.position.set(0, size * 0.3, size * 1.2);
      camera.near = size / 100;
      camera.far = size * 100;
      camera.updateProjectionMatrix();
      setState("ready");
    }, undefined, () => alive && setState("failed"));
    const tick = () => {
      controls.update();
      renderer.render(scene, camera);
      frame = requestAnimationFrame(tick);
    };
    tick();
    const resize = new ResizeObserver(() => {
      const w = element.clientWidth;
      const h = element.clientHeight;
      if (!w || !h) return;
      renderer.setSize(w, h);
      camera.aspect = w / h;
      camera.updateProjectionMatrix();
    });
    resize.observe(element);
    return () => {
      alive = false;
      cancelAnimationFrame(frame);
      resize.disconnect();
      controls.dispose();
      renderer.dispose();
      element.removeChild(renderer.domElement);
    };
  }, [url, label]);

  return (
    <div className="model-viewer">
      <div ref={host} className="model-canvas" data-state={state} />
      <p className="muted" role="status">
        {state === "loading" ? t("model.loading") : state === "failed" ? t("model.failed") : t("model.help")}
      </p>
    </div>
  );
}
