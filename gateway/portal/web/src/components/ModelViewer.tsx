// A small glTF/GLB viewer (three.js): the model lit and slowly turning, dragged to rotate.
// Self-contained (its only input is the file's URL) so any page can show a 3D output.
import { useEffect, useRef, useState } from "react";
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";

interface Props {
  src: string;
  /** What the model is, for people who cannot see the canvas. */
  label: string;
  height?: number;
}

export default function ModelViewer({ src, label, height = 320 }: Props) {
  const holder = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    let renderer: THREE.WebGLRenderer;
    try {
      renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true,
                                           preserveDrawingBuffer: true });
    } catch {
      setFailed(true);
      return;
    }
    const width = element.clientWidth || 320;
    renderer.setPixelRatio(window.devicePixelRatio);
    renderer.setSize(width, height);
    renderer.domElement.setAttribute("role", "img");
    renderer.domElement.setAttribute("aria-label", label);
    element.appendChild(renderer.domElement);

    const scene = new THREE.Scene();
    const camera = new THREE.PerspectiveCamera(45, width / height, 0.01, 100);
    scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 2));
    const sun = new THREE.DirectionalLight(0xffffff, 2);
    sun.position.set(2, 3, 4);
    scene.add(sun);
    const pivot = new THREE.Group();
    scene.add(pivot);

    let frame = 0;
    let dragging = false;
    let lastX = 0;
    const onDown = (e: PointerEvent) => { dragging = true; lastX = e.clientX; };
    const onUp = () => { dragging = false; };
    const onMove = (e: PointerEvent) => {
      if (!dragging) return;
      pivot.rotation.y += (e.clientX - lastX) * 0.01;
      lastX = e.clientX;
    };
    renderer.domElement.addEventListener("pointerdown", onDown);
    window.addEventListener("pointerup", onUp);
    window.addEventListener("pointermove", onMove);

    new GLTFLoader().load(src, (gltf) => {
      const box = new THREE.Box3().setFromObject(gltf.scene);
      const size = box.getSize(new THREE.Vector3()).length() || 1;
      gltf.scene.position.sub(box.getCenter(new THREE.Vector3()));
      pivot.add(gltf.scene);
      camera.position.set(0, size * 0.4, size * 1.4);
      camera.lookAt(0, 0, 0);
      element.dataset.loaded = "true";
    }, undefined, () => setFailed(true));

    const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    const tick = () => {
      if (!dragging && !reduced) pivot.rotation.y += 0.005;
      renderer.render(scene, camera);
      frame = requestAnimationFrame(tick);
    };
    tick();

    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener("pointerup", onUp);
      window.removeEventListener("pointermove", onMove);
      renderer.dispose();
      renderer.domElement.remove();
    };
  }, [src, label, height]);

  return (
    <div className="model-viewer" ref={holder} style={{ minHeight: height }}>
      {failed && <a href={src} download>{label}</a>}
    </div>
  );
}
