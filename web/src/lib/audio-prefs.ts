/** The viewer's mute and volume, remembered across visits (localStorage). */
export interface AudioPrefs {
  /** Muted by the viewer's own choice; `null` when they never chose (start muted, offer "tap to unmute"). */
  muted: boolean | null;
  /** 0–1. */
  volume: number;
}

const KEY = 'whipcast.audio';

export function loadAudioPrefs(): AudioPrefs {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<AudioPrefs> | null;
    const volume = typeof raw?.volume === 'number' && raw.volume >= 0 && raw.volume <= 1 ? raw.volume : 1;
    return { muted: typeof raw?.muted === 'boolean' ? raw.muted : null, volume };
  } catch {
    return { muted: null, volume: 1 };
  }
}

export function saveAudioPrefs(prefs: { muted: boolean; volume: number }): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(prefs));
  } catch {
    // storage full or disabled: the choice lasts for this page only
  }
}
